package evidence

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/authz"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// adminOf returns the calling operator as an actor when it is an admin; PermissionDenied
// otherwise, before anything about the tenant is looked at.
func (s *Service) adminOf(ctx context.Context) (Actor, error) {
	c, ok := authz.CallerFrom(ctx)
	if !ok || c.Operator == nil || c.Operator.Role != store.RoleAdmin {
		return Actor{}, status.Error(codes.PermissionDenied, "permission denied: admin only")
	}
	return Actor{Kind: ActorOperator, ID: c.Operator.Name}, nil
}

// retentionErr translates an Archiver error into a status: the retention conditions say
// why (no secret is in them), anything else is Internal with the cause in the log.
func (s *Service) retentionErr(op string, err error) error {
	switch {
	case errors.Is(err, ErrNothingToArchive), errors.Is(err, ErrNotPrunable):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrArchiveInvalid):
		s.cfg.Log.Error("evidence archive does not verify", "op", op, logkey.Error, err)
		return status.Error(codes.DataLoss, err.Error())
	}
	return s.internal(op, err)
}

func archiveProto(a store.EvidenceArchive) *wardv1.EvidenceArchive {
	return &wardv1.EvidenceArchive{FirstSeq: a.FirstSeq, LastSeq: a.LastSeq,
		Head: evidence.Hash(a.Head).String(), LastTime: timestamppb.New(a.LastTime),
		ManifestSha256: a.ManifestSHA256, File: a.File, Created: timestamppb.New(a.Created),
		Size: a.Size}
}

// Archive implements wardv1.EvidenceServiceServer: admin only. The archive is kept by the
// controller once written, even when the stream breaks afterwards.
func (s *Service) Archive(req *wardv1.ArchiveRequest,
	stream wardv1.EvidenceService_ArchiveServer) error {
	ctx := stream.Context()
	by, err := s.adminOf(ctx)
	if err != nil {
		return err
	}
	if s.cfg.Archiver == nil {
		return status.Error(codes.Unimplemented, "archiving is not configured")
	}
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return err
	}
	if req.GetBefore() == nil {
		return status.Error(codes.InvalidArgument, "before: required")
	}
	if err := req.GetBefore().CheckValid(); err != nil {
		return status.Errorf(codes.InvalidArgument, "before: %v", err)
	}

	var lastSent time.Time
	progress := func(phase string, done, total uint64) {
		if time.Since(lastSent) < 200*time.Millisecond && done < total {
			return
		}
		lastSent = time.Now()
		_ = stream.Send(&wardv1.ArchiveResponse{Body: &wardv1.ArchiveResponse_Progress{
			Progress: &wardv1.ExportProgress{Done: done, Total: total, Phase: phase}}})
	}
	res, err := s.cfg.Archiver.Archive(ctx, ArchiveParams{Tenant: req.GetTenant(),
		Before: req.GetBefore().AsTime(), By: by, Progress: progress})
	if err != nil {
		return s.retentionErr("archive", err)
	}

	f, err := s.cfg.Archiver.OpenArchive(res.Archive)
	if err != nil {
		return s.internal("open archive", err)
	}
	defer f.Close()
	chunks := chunkWriter(func(c []byte) error {
		return stream.Send(&wardv1.ArchiveResponse{Body: &wardv1.ArchiveResponse_Chunk{Chunk: c}})
	})
	if _, err := io.Copy(chunks, f); err != nil {
		return s.internal("send archive", err)
	}
	return stream.Send(&wardv1.ArchiveResponse{Body: &wardv1.ArchiveResponse_Summary{
		Summary: &wardv1.ArchiveSummary{Archive: archiveProto(res.Archive),
			Checkpoints:    uint32(res.Summary.Checkpoints),
			Witnesses:      uint32(res.Summary.Witnesses),
			KeyFingerprint: s.cfg.Exporter.Key.Fingerprint}}})
}

// Prune implements wardv1.EvidenceServiceServer: admin only.
func (s *Service) Prune(ctx context.Context, req *wardv1.PruneRequest) (
	*wardv1.PruneResponse, error) {
	by, err := s.adminOf(ctx)
	if err != nil {
		return nil, err
	}
	if s.cfg.Archiver == nil {
		return nil, status.Error(codes.Unimplemented, "archiving is not configured")
	}
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return nil, err
	}
	res, err := s.cfg.Archiver.Prune(ctx, req.GetTenant(), by)
	if err != nil {
		return nil, s.retentionErr("prune", err)
	}
	resp := &wardv1.PruneResponse{PrunedThrough: res.Base.Size,
		Head: evidence.Hash(res.Base.Hash).String(), Removed: res.Removed,
		Cutoff: timestamppb.New(res.Cutoff), RetentionYears: uint32(s.cfg.Archiver.Years())}
	for _, a := range res.Archives {
		resp.Archives = append(resp.Archives, archiveProto(a))
	}
	return resp, nil
}

// ListArchives implements wardv1.EvidenceServiceServer: every role within its tenants.
func (s *Service) ListArchives(ctx context.Context, req *wardv1.ListArchivesRequest) (
	*wardv1.ListArchivesResponse, error) {
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return nil, err
	}
	if s.cfg.Archiver == nil {
		return nil, status.Error(codes.Unimplemented, "archiving is not configured")
	}
	archives, base, err := s.cfg.Archiver.Archives(ctx, req.GetTenant())
	if err != nil {
		return nil, s.internal("list archives", err)
	}
	resp := &wardv1.ListArchivesResponse{PrunedThrough: base.Size,
		RetentionYears: uint32(s.cfg.Archiver.Years())}
	for _, a := range archives {
		resp.Archives = append(resp.Archives, archiveProto(a))
	}
	return resp, nil
}

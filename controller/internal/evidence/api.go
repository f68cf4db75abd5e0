package evidence

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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

// ServiceConfig configures the EvidenceService.
type ServiceConfig struct {
	Store    store.Evidence // required
	Tenants  store.Tenants  // required
	Exporter *Exporter      // required
	// Archiver archives and prunes; nil answers Archive, Prune and ListArchives with
	// Unimplemented.
	Archiver *Archiver
	Log      *slog.Logger // nil discards
}

// Service implements wardv1.EvidenceServiceServer; every role may read and export the
// logs of the tenants it can see, only admins archive and prune. It is safe for
// concurrent use.
type Service struct {
	wardv1.UnimplementedEvidenceServiceServer
	cfg ServiceConfig
}

// NewService returns the EvidenceService.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

// exportChunk is the size of the bundle chunks an export sends.
const exportChunk = 256 << 10

// listLimit is the default and largest page of ListRecords.
const listLimit = 1000

// canSee reports whether the calling operator may read tenant's log; it answers
// NotFound for a tenant that does not exist or is hidden from the caller. (The same rule
// as adminapi's: admin all, technician its tenants, auditor its tenants or all.)
func (s *Service) canSee(ctx context.Context, tenant string) error {
	c, ok := authz.CallerFrom(ctx)
	if !ok || c.Operator == nil {
		return status.Error(codes.PermissionDenied, "permission denied")
	}
	op := c.Operator
	visible := op.Role == store.RoleAdmin ||
		op.Role == store.RoleTechnician && slices.Contains(op.Tenants, tenant) ||
		op.Role == store.RoleAuditor && (len(op.Tenants) == 0 || slices.Contains(op.Tenants, tenant))
	if tenant == "" {
		return status.Error(codes.InvalidArgument, "tenant: required")
	}
	if !visible {
		return status.Errorf(codes.NotFound, "tenant %q not found", tenant)
	}
	if _, err := s.cfg.Tenants.GetTenant(ctx, tenant); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return status.Errorf(codes.NotFound, "tenant %q not found", tenant)
		}
		return s.internal("get tenant", err)
	}
	return nil
}

func (s *Service) internal(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.cfg.Log.Error("evidence api", "op", op, logkey.Error, err)
	return status.Error(codes.Internal, "internal error")
}

func toProto(r store.EvidenceRecord) (*wardv1.EvidenceRecord, error) {
	rec, err := evidence.ParseBody(r.Body)
	if err != nil {
		return nil, err
	}
	return &wardv1.EvidenceRecord{Seq: r.Seq, Time: timestamppb.New(rec.Time), Type: rec.Type,
		ActorKind: rec.Actor.Kind, ActorId: rec.Actor.ID, Subject: rec.Subject,
		DataJson: string(rec.Data), Hash: evidence.Hash(r.Hash).String(),
		Line: string(evidence.Line(r.Body, r.Hash))}, nil
}

// ListRecords implements wardv1.EvidenceServiceServer.
func (s *Service) ListRecords(ctx context.Context, req *wardv1.ListRecordsRequest) (
	*wardv1.ListRecordsResponse, error) {
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit <= 0 || limit > listLimit {
		limit = listLimit
	}
	var since time.Time
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "since: %v", err)
		}
		since = req.GetSince().AsTime()
	}
	head, err := s.cfg.Store.EvidenceHead(ctx, req.GetTenant())
	if err != nil {
		return nil, s.internal("evidence head", err)
	}
	resp := &wardv1.ListRecordsResponse{Size: head.Size}
	for after := req.GetAfterSeq(); len(resp.Records) < limit; {
		page, err := s.cfg.Store.ListEvidence(ctx, req.GetTenant(), after, 4*listLimit)
		if err != nil {
			return nil, s.internal("list evidence", err)
		}
		for _, r := range page {
			pr, err := toProto(r)
			if err != nil {
				return nil, s.internal("decode evidence", err)
			}
			if len(req.GetTypes()) > 0 && !slices.Contains(req.GetTypes(), pr.Type) ||
				pr.Time.AsTime().Before(since) {
				continue
			}
			resp.Records = append(resp.Records, pr)
			if len(resp.Records) == limit {
				break
			}
		}
		if len(page) < 4*listLimit {
			break
		}
		after = page[len(page)-1].Seq
	}
	return resp, nil
}

// GetRecord implements wardv1.EvidenceServiceServer.
func (s *Service) GetRecord(ctx context.Context, req *wardv1.GetRecordRequest) (
	*wardv1.GetRecordResponse, error) {
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return nil, err
	}
	if req.GetSeq() == 0 {
		return nil, status.Error(codes.InvalidArgument, "seq: required (records start at 1)")
	}
	recs, err := s.cfg.Store.ListEvidence(ctx, req.GetTenant(), req.GetSeq()-1, 1)
	if err != nil {
		return nil, s.internal("list evidence", err)
	}
	if len(recs) == 0 || recs[0].Seq != req.GetSeq() {
		return nil, status.Errorf(codes.NotFound, "record %d not found", req.GetSeq())
	}
	pr, err := toProto(recs[0])
	if err != nil {
		return nil, s.internal("decode evidence", err)
	}
	return &wardv1.GetRecordResponse{Record: pr}, nil
}

// ListWitnesses implements wardv1.EvidenceServiceServer.
func (s *Service) ListWitnesses(ctx context.Context, req *wardv1.ListWitnessesRequest) (
	*wardv1.ListWitnessesResponse, error) {
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return nil, err
	}
	cps, err := s.cfg.Store.ListCheckpoints(ctx, req.GetTenant(), 0)
	if err != nil {
		return nil, s.internal("list checkpoints", err)
	}
	ws, err := s.cfg.Store.ListWitnesses(ctx, req.GetTenant(), 0)
	if err != nil {
		return nil, s.internal("list witnesses", err)
	}
	by := map[uint64][]string{}
	for _, w := range ws {
		by[w.Size] = append(by[w.Size], w.Agent)
	}
	resp := &wardv1.ListWitnessesResponse{}
	for _, cp := range cps {
		resp.Checkpoints = append(resp.Checkpoints, &wardv1.EvidenceCheckpoint{Size: cp.Size,
			Head: evidence.Hash(cp.Head).String(), Time: timestamppb.New(cp.Time),
			Witnesses: by[cp.Size]})
	}
	return resp, nil
}

// chunkWriter sends what is written to it as chunks of at most exportChunk bytes, each
// with send (a bundle's chunks on an Export or Archive stream).
type chunkWriter func(chunk []byte) error

func (send chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), exportChunk)]
		if err := send(c); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}

// Export implements wardv1.EvidenceServiceServer.
func (s *Service) Export(req *wardv1.ExportRequest, stream wardv1.EvidenceService_ExportServer) error {
	ctx := stream.Context()
	if err := s.canSee(ctx, req.GetTenant()); err != nil {
		return err
	}
	q := ExportQuery{Tenant: req.GetTenant()}
	if req.GetFrom() != nil {
		if err := req.GetFrom().CheckValid(); err != nil {
			return status.Errorf(codes.InvalidArgument, "from: %v", err)
		}
		q.From = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		if err := req.GetTo().CheckValid(); err != nil {
			return status.Errorf(codes.InvalidArgument, "to: %v", err)
		}
		q.To = req.GetTo().AsTime()
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return status.Error(codes.InvalidArgument, "from is after to")
	}
	var lastSent time.Time
	progress := func(phase string, done, total uint64) {
		if time.Since(lastSent) < 200*time.Millisecond && done < total {
			return
		}
		lastSent = time.Now()
		_ = stream.Send(&wardv1.ExportResponse{Body: &wardv1.ExportResponse_Progress{
			Progress: &wardv1.ExportProgress{Done: done, Total: total, Phase: phase}}})
	}
	chunks := chunkWriter(func(c []byte) error {
		return stream.Send(&wardv1.ExportResponse{Body: &wardv1.ExportResponse_Chunk{Chunk: c}})
	})
	sum, err := s.cfg.Exporter.Export(ctx, chunks, q, progress)
	if err != nil {
		return s.internal("export", err)
	}
	return stream.Send(&wardv1.ExportResponse{Body: &wardv1.ExportResponse_Summary{
		Summary: &wardv1.ExportSummary{FirstSeq: sum.FirstSeq, LastSeq: sum.LastSeq,
			Checkpoints: uint32(sum.Checkpoints), Witnesses: uint32(sum.Witnesses),
			KeyFingerprint: s.cfg.Exporter.Key.Fingerprint}}})
}

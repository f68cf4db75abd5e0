package evidence_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	ctlevidence "github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/controller/internal/store/badger"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// archive runs an Archive call and returns the archive's bytes and summary.
func archive(ctx context.Context, c wardv1.EvidenceServiceClient, req *wardv1.ArchiveRequest) (
	[]byte, *wardv1.ArchiveSummary, error) {
	stream, err := c.Archive(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	var sum *wardv1.ArchiveSummary
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), sum, nil
		}
		if err != nil {
			return nil, nil, err
		}
		buf.Write(m.GetChunk())
		if m.GetSummary() != nil {
			sum = m.GetSummary()
		}
	}
}

// operatorCert stores an admin operator and returns a certificate of it valid for ttl,
// once it has expired when wait is true.
func operatorCert(t *testing.T, e *apiEnv, name string, ttl time.Duration,
	wait bool) adminapitest.Cred {
	e.Operator(name, store.RoleAdmin)
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "test")
	if err != nil {
		t.Fatal(err)
	}
	chain, leaf, err := e.CA.SignOperator(csr, name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(pki.EncodeCerts(chain...), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if wait {
		time.Sleep(time.Until(leaf.NotAfter) + 100*time.Millisecond)
	}
	return adminapitest.Cred{TLS: pair}
}

// stored is what retention may have changed of a tenant.
type stored struct {
	head     store.EvidenceHead
	base     store.EvidenceHead
	archives int
	files    int
}

func (e *apiEnv) stored(t *testing.T, tenant string) stored {
	t.Helper()
	ctx := context.Background()
	var s stored
	var err error
	if s.head, err = e.Store.(*badger.Store).EvidenceHead(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	archives, base, err := e.ev.Archiver.Archives(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	s.base, s.archives = base, len(archives)
	entries, _ := os.ReadDir(e.ev.ArchiveDir)
	s.files = len(entries)
	return s
}

// TestRetentionAuthorisation: only admins archive and prune (technicians, auditors and
// agents are refused whatever the tenant, revoked and expired certificates at the
// handshake); every role lists the archives of its tenants only. A refused call changes
// nothing.
func TestRetentionAuthorisation(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	if _, err := e.ev.Checkpointer.Checkpoint(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	admin := e.AdminCred()
	tech := e.Operator("tech", store.RoleTechnician, "t1")
	auditor := e.Operator("aud", store.RoleAuditor, "t1")
	auditorAll := e.Operator("aud-all", store.RoleAuditor)
	revoked := e.Operator("gone", store.RoleAdmin)
	_, err := e.Store.UpdateOperator(ctx, "gone", func(o *store.Operator) error {
		o.Revoked = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	agent := e.Agent("t1", "a1")
	fresh := operatorCert(t, e, "fresh", time.Hour, false) // made as the expired one
	expired := operatorCert(t, e, "late", time.Second, true)
	before := e.stored(t, "t1")

	doArchive := func(ctx context.Context, c wardv1.EvidenceServiceClient, tn string) error {
		_, _, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: tn,
			Before: timestamppb.Now()})
		return err
	}
	doPrune := func(ctx context.Context, c wardv1.EvidenceServiceClient, tn string) error {
		_, err := c.Prune(ctx, &wardv1.PruneRequest{Tenant: tn})
		return err
	}
	doList := func(ctx context.Context, c wardv1.EvidenceServiceClient, tn string) error {
		_, err := c.ListArchives(ctx, &wardv1.ListArchivesRequest{Tenant: tn})
		return err
	}
	tests := []struct {
		name   string
		cred   *adminapitest.Cred
		tenant string
		do     func(context.Context, wardv1.EvidenceServiceClient, string) error
		want   codes.Code
	}{
		{"technician archive", &tech, "t1", doArchive, codes.PermissionDenied},
		{"technician prune", &tech, "t1", doPrune, codes.PermissionDenied},
		{"auditor archive", &auditor, "t1", doArchive, codes.PermissionDenied},
		{"auditor prune", &auditor, "t1", doPrune, codes.PermissionDenied},
		{"auditor of all archive", &auditorAll, "t1", doArchive, codes.PermissionDenied},
		{"agent archive", &agent, "t1", doArchive, codes.PermissionDenied},
		{"agent prune", &agent, "t1", doPrune, codes.PermissionDenied},
		{"agent list", &agent, "t1", doList, codes.PermissionDenied},
		{"revoked admin archive", &revoked, "t1", doArchive, codes.Unavailable},
		{"revoked admin prune", &revoked, "t1", doPrune, codes.Unavailable},
		{"expired admin archive", &expired, "t1", doArchive, codes.Unavailable},
		{"expired admin prune", &expired, "t1", doPrune, codes.Unavailable},
		{"no certificate archive", nil, "t1", doArchive, codes.Unauthenticated},
		{"technician list other tenant", &tech, "t2", doList, codes.NotFound},
		{"auditor list other tenant", &auditor, "t2", doList, codes.NotFound},
		{"technician list own tenant", &tech, "t1", doList, codes.OK},
		{"auditor list own tenant", &auditor, "t1", doList, codes.OK},
		{"auditor of all list", &auditorAll, "t2", doList, codes.OK},
		{"admin list", &admin, "t2", doList, codes.OK},
		{"fresh admin list", &fresh, "t1", doList, codes.OK},
		{"expired admin list", &expired, "t1", doList, codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := tt.do(ctx, e.client(tt.cred), tt.tenant)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v (%v), want %v", got, err, tt.want)
			}
			if after := e.stored(t, "t1"); after != before {
				t.Errorf("stored %+v, was %+v", after, before)
			}
		})
	}

	// the admin may; the archive streamed is the one kept, and it verifies
	c := e.client(&admin)
	data, sum, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: "t1",
		Before: timestamppb.Now()})
	if err != nil || sum == nil {
		t.Fatalf("admin archive: %v, summary %v", err, sum)
	}
	rep, err := evidence.VerifyReader(bytes.NewReader(data),
		evidence.VerifyOptions{Roots: e.CA.Roots()}, nil)
	if err != nil || rep.ManifestSHA256 != sum.Archive.ManifestSha256 || rep.FirstSeq != 1 ||
		rep.LastSeq != sum.Archive.LastSeq {
		t.Fatalf("streamed archive: %+v, %v; summary %v", rep, err, sum)
	}
	kept, err := os.ReadFile(e.ev.ArchiveDir + "/" + sum.Archive.File)
	if err != nil || !bytes.Equal(kept, data) {
		t.Errorf("kept archive differs from the streamed one: %v", err)
	}
	list, err := e.client(&tech).ListArchives(ctx, &wardv1.ListArchivesRequest{Tenant: "t1"})
	if err != nil || len(list.Archives) != 1 || list.RetentionYears != 6 ||
		list.Archives[0].ManifestSha256 != sum.Archive.ManifestSha256 {
		t.Errorf("ListArchives = %v, %v", list, err)
	}
	recs, err := c.ListRecords(ctx, &wardv1.ListRecordsRequest{Tenant: "t1",
		Types: []string{ctlevidence.TypeArchived}})
	if err != nil || len(recs.Records) != 1 || recs.Records[0].ActorId != "admin" ||
		recs.Records[0].ActorKind != string(ctlevidence.ActorOperator) {
		t.Errorf("log.archived records: %v, %v", recs, err)
	}
	// records within the retention period stay: FailedPrecondition, nothing removed
	_, err = c.Prune(ctx, &wardv1.PruneRequest{Tenant: "t1"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "6 years") {
		t.Errorf("admin prune of young records = %v, want FailedPrecondition", err)
	}
	if s := e.stored(t, "t1"); s.base.Size != 0 {
		t.Errorf("base moved to %d", s.base.Size)
	}
}

// TestRetentionPruneOverTheAPI: once past the retention period, an admin's Prune removes
// the archived records, says so, and the live log exported afterwards verifies and
// chains to the archive.
func TestRetentionPruneOverTheAPI(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	if _, err := e.ev.Checkpointer.Checkpoint(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	c := e.client(ptr(e.AdminCred()))
	data, sum, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: "t1",
		Before: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	archRep, err := evidence.VerifyReader(bytes.NewReader(data),
		evidence.VerifyOptions{Roots: e.CA.Roots()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.ev.SetNow(time.Now().AddDate(6, 0, 1))
	resp, err := c.Prune(ctx, &wardv1.PruneRequest{Tenant: "t1"})
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if resp.PrunedThrough != sum.Archive.LastSeq || resp.Removed != sum.Archive.LastSeq ||
		len(resp.Archives) != 1 || resp.RetentionYears != 6 ||
		resp.Head != sum.Archive.Head {
		t.Errorf("Prune = %v", resp)
	}
	live, err := export(ctx, c, &wardv1.ExportRequest{Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evidence.VerifyReader(bytes.NewReader(live),
		evidence.VerifyOptions{Roots: e.CA.Roots()}, nil)
	if err != nil {
		t.Fatalf("live log after the prune: %v", err)
	}
	if err := rep.Continues(archRep); err != nil {
		t.Errorf("live log does not continue the archive: %v", err)
	}
	_, err = c.GetRecord(ctx, &wardv1.GetRecordRequest{Tenant: "t1", Seq: 1})
	if status.Code(err) != codes.NotFound {
		t.Errorf("pruned record 1: %v, want NotFound", err)
	}
	list, err := c.ListArchives(ctx, &wardv1.ListArchivesRequest{Tenant: "t1"})
	if err != nil || list.PrunedThrough != sum.Archive.LastSeq {
		t.Errorf("ListArchives = %v, %v", list, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRetentionRejectsMalformedInput: a missing tenant or time, a bad timestamp or an
// unknown tenant answers InvalidArgument or NotFound and changes nothing stored; a log
// without a checkpoint has nothing to archive.
func TestRetentionRejectsMalformedInput(t *testing.T) {
	e := newAPIEnv(t)
	c := e.client(ptr(e.AdminCred()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := e.stored(t, "t1")
	now := timestamppb.Now()

	tests := []struct {
		name string
		do   func() error
		want codes.Code
	}{
		{"archive without tenant", func() error {
			_, _, err := archive(ctx, c, &wardv1.ArchiveRequest{Before: now})
			return err
		}, codes.InvalidArgument},
		{"archive without before", func() error {
			_, _, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: "t1"})
			return err
		}, codes.InvalidArgument},
		{"archive with a bad before", func() error {
			_, _, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: "t1",
				Before: &timestamppb.Timestamp{Nanos: -1}})
			return err
		}, codes.InvalidArgument},
		{"archive of an unknown tenant", func() error {
			_, _, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: "nope", Before: now})
			return err
		}, codes.NotFound},
		{"archive before any checkpoint", func() error {
			_, _, err := archive(ctx, c, &wardv1.ArchiveRequest{Tenant: "t1", Before: now})
			return err
		}, codes.FailedPrecondition},
		{"prune without tenant", func() error {
			_, err := c.Prune(ctx, &wardv1.PruneRequest{})
			return err
		}, codes.InvalidArgument},
		{"prune of an unknown tenant", func() error {
			_, err := c.Prune(ctx, &wardv1.PruneRequest{Tenant: "nope"})
			return err
		}, codes.NotFound},
		{"prune without an archive", func() error {
			_, err := c.Prune(ctx, &wardv1.PruneRequest{Tenant: "t1"})
			return err
		}, codes.FailedPrecondition},
		{"list without tenant", func() error {
			_, err := c.ListArchives(ctx, &wardv1.ListArchivesRequest{})
			return err
		}, codes.InvalidArgument},
		{"list of an unknown tenant", func() error {
			_, err := c.ListArchives(ctx, &wardv1.ListArchivesRequest{Tenant: "nope"})
			return err
		}, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.do()); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
			if after := e.stored(t, "t1"); after != before {
				t.Errorf("stored %+v, was %+v", after, before)
			}
		})
	}
}

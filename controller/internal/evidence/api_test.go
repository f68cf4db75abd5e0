package evidence_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardsec/ward/controller/internal/adminapi/adminapitest"
	ctlevidence "github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/evidence"
	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// apiEnv is the EvidenceService served over mTLS on loopback with the real authz
// interceptors, on the store of an adminapitest installation. Tenants t1 (three records)
// and t2 (one record).
type apiEnv struct {
	*adminapitest.Env
	ev   *adminapitest.Evidence
	addr string
}

func newAPIEnv(t *testing.T) *apiEnv {
	base := adminapitest.New(t)
	ev := base.ServeEvidence()
	base.Tenant("t1")
	base.Tenant("t2")
	for _, e := range []ctlevidence.Entry{
		{Tenant: "t1", Type: ctlevidence.TypeTenantCreated, Subject: "t1"},
		{Tenant: "t1", Type: ctlevidence.TypeTokenCreated, Subject: "tok1"},
		{Tenant: "t1", Type: ctlevidence.TypeAgentEnrolled, Subject: "a1"},
		{Tenant: "t2", Type: ctlevidence.TypeTenantCreated, Subject: "t2"},
	} {
		e.Actor = ctlevidence.Actor{Kind: ctlevidence.ActorOperator, ID: "admin"}
		if _, err := ev.Log.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return &apiEnv{Env: base, ev: ev, addr: ev.Addr}
}

func (e *apiEnv) client(c *adminapitest.Cred) wardv1.EvidenceServiceClient {
	e.T.Helper()
	var get func() (*tls.Certificate, error)
	if c != nil {
		get = func() (*tls.Certificate, error) { return &c.TLS, nil }
	}
	cfg := pki.ClientConfig(e.CA.Roots(), "localhost", get)
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { conn.Close() })
	return wardv1.NewEvidenceServiceClient(conn)
}

// export runs an export and returns the bundle's bytes and the stream's status.
func export(ctx context.Context, c wardv1.EvidenceServiceClient, req *wardv1.ExportRequest) (
	[]byte, error) {
	stream, err := c.Export(ctx, req)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		buf.Write(m.GetChunk())
	}
}

// TestServiceRolesAndTenants calls every method with each kind of caller over mTLS: every
// operator role may read and export the logs of the tenants it can see; a tenant it
// cannot see is NotFound like one that does not exist; agents and callers without a
// certificate are refused before the service.
func TestServiceRolesAndTenants(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.AdminCred()
	tech := e.Operator("tech", store.RoleTechnician, "t1")
	auditor := e.Operator("aud", store.RoleAuditor, "t1")
	auditorAll := e.Operator("aud-all", store.RoleAuditor)
	revoked := e.Operator("gone", store.RoleAdmin)
	_, err := e.Store.UpdateOperator(context.Background(), "gone", func(o *store.Operator) error {
		o.Revoked = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	agent := e.Agent("t1", "a1")

	type call struct {
		name string
		do   func(context.Context, wardv1.EvidenceServiceClient, string) error
	}
	calls := []call{
		{"ListRecords", func(ctx context.Context, c wardv1.EvidenceServiceClient, t string) error {
			r, err := c.ListRecords(ctx, &wardv1.ListRecordsRequest{Tenant: t})
			if err == nil && (len(r.Records) == 0 || r.Size != uint64(len(r.Records))) {
				return status.Errorf(codes.DataLoss, "listed %d of %d", len(r.Records), r.Size)
			}
			return err
		}},
		{"GetRecord", func(ctx context.Context, c wardv1.EvidenceServiceClient, t string) error {
			r, err := c.GetRecord(ctx, &wardv1.GetRecordRequest{Tenant: t, Seq: 1})
			if err == nil && r.Record.GetType() != ctlevidence.TypeTenantCreated {
				return status.Errorf(codes.DataLoss, "record 1 is %s", r.Record.GetType())
			}
			return err
		}},
		{"ListWitnesses", func(ctx context.Context, c wardv1.EvidenceServiceClient, t string) error {
			_, err := c.ListWitnesses(ctx, &wardv1.ListWitnessesRequest{Tenant: t})
			return err
		}},
		{"Export", func(ctx context.Context, c wardv1.EvidenceServiceClient, t string) error {
			data, err := export(ctx, c, &wardv1.ExportRequest{Tenant: t})
			if err != nil {
				return err
			}
			b, err := evidence.ReadBundle(bytes.NewReader(data))
			if err != nil {
				return status.Errorf(codes.DataLoss, "bundle: %v", err)
			}
			if _, err := b.Verify(evidence.VerifyOptions{Roots: e.CA.Roots()}); err != nil {
				return status.Errorf(codes.DataLoss, "verify: %v", err)
			}
			return nil
		}},
	}
	cases := []struct {
		name   string
		cred   *adminapitest.Cred
		tenant string
		want   codes.Code
	}{
		{"admin", &admin, "t1", codes.OK},
		{"admin other tenant", &admin, "t2", codes.OK},
		{"admin unknown tenant", &admin, "nope", codes.NotFound},
		{"admin no tenant", &admin, "", codes.InvalidArgument},
		{"technician own tenant", &tech, "t1", codes.OK},
		{"technician other tenant", &tech, "t2", codes.NotFound},
		{"auditor own tenant", &auditor, "t1", codes.OK},
		{"auditor other tenant", &auditor, "t2", codes.NotFound},
		{"auditor of all tenants", &auditorAll, "t2", codes.OK},
		// a revoked operator is refused at the TLS handshake: no connection at all
		{"revoked operator", &revoked, "t1", codes.Unavailable},
		{"agent certificate", &agent, "t1", codes.PermissionDenied},
		{"no certificate", nil, "t1", codes.Unauthenticated},
	}
	for _, tc := range cases {
		c := e.client(tc.cred)
		for _, m := range calls {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if got := status.Code(m.do(ctx, c, tc.tenant)); got != tc.want {
					t.Errorf("code %v, want %v", got, tc.want)
				}
			})
		}
	}
}

// TestServiceRejectsMalformedInput checks the status of requests that name no record or
// an impossible range.
func TestServiceRejectsMalformedInput(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.AdminCred()
	c := e.client(&admin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Now()

	_, err := c.GetRecord(ctx, &wardv1.GetRecordRequest{Tenant: "t1", Seq: 99})
	if got := status.Code(err); got != codes.NotFound {
		t.Errorf("unknown seq: %v, want NotFound", err)
	}
	_, err = c.GetRecord(ctx, &wardv1.GetRecordRequest{Tenant: "t1"})
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("seq 0: %v, want InvalidArgument", err)
	}
	_, err = c.GetRecord(ctx, &wardv1.GetRecordRequest{Tenant: "t2", Seq: 2})
	if got := status.Code(err); got != codes.NotFound {
		t.Errorf("seq past another tenant's head: %v, want NotFound", err)
	}
	_, err = export(ctx, c, &wardv1.ExportRequest{Tenant: "t1",
		From: timestamppb.New(now), To: timestamppb.New(now.Add(-time.Hour))})
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("from after to: %v, want InvalidArgument", err)
	}
	_, err = export(ctx, c, &wardv1.ExportRequest{Tenant: "t1",
		From: &timestamppb.Timestamp{Seconds: 1, Nanos: -5}})
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("invalid timestamp: %v, want InvalidArgument", err)
	}
	_, err = c.ListRecords(ctx, &wardv1.ListRecordsRequest{Tenant: "t1",
		Since: &timestamppb.Timestamp{Nanos: 2e9}})
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("invalid since: %v, want InvalidArgument", err)
	}
	_, err = c.ListRecords(ctx, &wardv1.ListRecordsRequest{Tenant: "bad tenant!"})
	if got := status.Code(err); got != codes.NotFound {
		t.Errorf("malformed tenant: %v, want NotFound", err)
	}
	// a range that holds no record is an empty bundle, not an error
	data, err := export(ctx, c, &wardv1.ExportRequest{Tenant: "t1",
		From: timestamppb.New(now.Add(time.Hour))})
	if err != nil {
		t.Fatalf("empty range: %v", err)
	}
	b, err := evidence.ReadBundle(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := b.Verify(evidence.VerifyOptions{Roots: e.CA.Roots()}); err != nil ||
		rep.Records != 0 {
		t.Errorf("empty range: %+v, %v", rep, err)
	}
}

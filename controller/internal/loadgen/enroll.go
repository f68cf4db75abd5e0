package loadgen

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardsec/ward/pkg/pki"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// maxTokenUses is the most enrollments one token allows (admin.proto).
const maxTokenUses = 1000

// tokenSecrets creates tenant (when missing) and enough enrollment tokens of uses uses each
// (at most maxTokenUses) for n enrollments through the admin API, and returns their
// secrets: token i allows enrollments [i*uses, (i+1)*uses).
func tokenSecrets(ctx context.Context, addr string, in Installation, tenant string,
	n, uses int) ([]string, error) {
	cfg, err := in.OperatorTLS()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("dial admin api: %w", err)
	}
	defer conn.Close()
	admin := wardv1.NewAdminServiceClient(conn)

	_, err = admin.CreateTenant(ctx, &wardv1.CreateTenantRequest{Id: tenant,
		DisplayName: "ward-loadgen"})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return nil, fmt.Errorf("create tenant %s: %w", tenant, err)
	}

	var secrets []string
	for left := n; left > 0; left -= uses {
		resp, err := admin.CreateToken(ctx, &wardv1.CreateTokenRequest{
			Tenant: tenant,
			Ttl:    durationpb.New(2 * time.Hour),
			Uses:   uint32(min(left, uses)),
		})
		if err != nil {
			return nil, fmt.Errorf("create token: %w", err)
		}
		secrets = append(secrets, resp.GetSecret())
	}
	return secrets, nil
}

// application is one enrollment prepared ahead of time, so that key generation is not
// measured.
type application struct {
	key crypto.Signer
	csr []byte
}

// prepareApplications makes n fresh keys and their CSRs.
func prepareApplications(n int) ([]application, error) {
	apps := make([]application, n)
	for i := range apps {
		key, err := pki.NewKey()
		if err != nil {
			return nil, err
		}
		csr, err := pki.NewCSR(key, "ward-loadgen")
		if err != nil {
			return nil, err
		}
		apps[i] = application{key: key, csr: csr}
	}
	return apps, nil
}

// enroll runs one enrollment as `ward-agent enroll` does: a fresh connection without a client
// certificate, one Enroll call, close.
func (d *Dialer) enroll(ctx context.Context, token string, app application) (Identity, error) {
	conn, err := d.dial(nil)
	if err != nil {
		return Identity{}, err
	}
	defer conn.Close()

	resp, err := wardv1.NewEnrollmentServiceClient(conn).Enroll(ctx, &wardv1.EnrollRequest{
		Token:  token,
		CsrDer: app.csr,
		Host:   &wardv1.HostFacts{Hostname: "ward-loadgen", Os: "debian", Roles: []string{"host"}},
	})
	if err != nil {
		return Identity{}, fmt.Errorf("enroll: %w", err)
	}
	if len(resp.GetCertificateChain()) == 0 {
		return Identity{}, fmt.Errorf("enroll: empty certificate chain")
	}
	cert := tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: app.key}
	return Identity{ID: resp.GetAgentId(), Cert: cert}, nil
}

// enrollAll enrolls one agent per application with up to concurrency in flight, and returns
// the identities and the time it took. Application i is number first+i of the run and uses
// the token tokenSecrets made for it.
func enrollAll(ctx context.Context, d *Dialer, secrets []string, uses int,
	apps []application, first, concurrency int) ([]Identity, time.Duration, error) {
	ids := make([]Identity, len(apps))
	start := time.Now()
	err := forEach(ctx, len(apps), concurrency, func(ctx context.Context, i int) error {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		id, err := d.enroll(rctx, secrets[(first+i)/uses], apps[i])
		ids[i] = id
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return ids, time.Since(start), nil
}

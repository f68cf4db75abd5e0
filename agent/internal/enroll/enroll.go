// Package enroll turns a one-time token into an agent identity: it makes a key on the host,
// sends a certificate signing request with the token to the controller's EnrollmentService
// over TLS 1.3 (trusting only the given CA bundle), and writes the state directory.
package enroll

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/wardsec/ward/agent/internal/hostinfo"
	"github.com/wardsec/ward/agent/internal/state"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	"github.com/wardsec/ward/pkg/pki"
	"github.com/wardsec/ward/pkg/version"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Errors callers branch on. Their text is meant for the person running the command.
var (
	// ErrRefused is returned when the controller refuses the token (PermissionDenied).
	ErrRefused = errors.New("enrollment refused: the token is invalid, expired, used up " +
		"or not valid from this address; ask your operator for a new token")
	// ErrRateLimited is returned when the controller refuses for too many attempts.
	ErrRateLimited = errors.New("enrollment refused: too many attempts from this address; " +
		"wait a few minutes and try again")
	// ErrAlreadyEnrolled is returned when the state directory holds an enrollment and
	// Force is not set.
	ErrAlreadyEnrolled = errors.New("this agent is already enrolled; " +
		"use --force to replace its identity")
)

// DefaultTimeout bounds the Enroll call.
const DefaultTimeout = 30 * time.Second

// Config configures Run.
type Config struct {
	// Controller is the controller's host:port. Required.
	Controller string
	// TokenFile holds the one-time token; surrounding whitespace is ignored. Required.
	TokenFile string
	// CAFile is the PEM bundle the controller's certificate must chain to. Required.
	CAFile string
	// Dir is the state directory to write. Required.
	Dir state.Dir
	// Roles the agent will run ("host", "collector"). Empty means host.
	Roles []string
	// Force replaces an existing enrollment, deleting its spool.
	Force bool
	// HostRoot is where host facts are read; empty means "/".
	HostRoot string
	// Timeout bounds the Enroll call; zero means DefaultTimeout.
	Timeout time.Duration
	// Log receives progress events; never the token. Required.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Run enrolls the agent and returns what it wrote to agent.json.
func Run(ctx context.Context, cfg Config) (state.Info, error) {
	if err := cfg.check(); err != nil {
		return state.Info{}, err
	}

	enrolled, err := cfg.Dir.Enrolled()
	if err != nil {
		return state.Info{}, fmt.Errorf("enroll: %w", err)
	}
	if enrolled && !cfg.Force {
		return state.Info{}, ErrAlreadyEnrolled
	}
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return state.Info{}, err
	}
	roots, err := pki.LoadPool(cfg.CAFile)
	if err != nil {
		return state.Info{}, fmt.Errorf("enroll: %w", err)
	}

	key, err := pki.NewKey()
	if err != nil {
		return state.Info{}, fmt.Errorf("enroll: %w", err)
	}
	csr, err := pki.NewCSR(key, "ward-agent")
	if err != nil {
		return state.Info{}, fmt.Errorf("enroll: %w", err)
	}
	req := &wardv1.EnrollRequest{
		Token:  token,
		CsrDer: csr,
		Host:   hostinfo.Collect(cfg.HostRoot).Proto(version.Version, cfg.Roles),
	}

	resp, err := call(ctx, cfg, roots, req)
	if err != nil {
		return state.Info{}, err
	}
	info, err := cfg.save(key, resp)
	if err != nil {
		return state.Info{}, err
	}
	cfg.Log.Info("agent enrolled", logkey.Agent, info.AgentID, logkey.Tenant, info.Tenant,
		logkey.Identity, info.ID().String(), logkey.Addr, cfg.Controller)
	return info, nil
}

func (cfg *Config) check() error {
	switch {
	case cfg.Controller == "":
		return errors.New("enroll: no controller address")
	case cfg.TokenFile == "":
		return errors.New("enroll: no token file")
	case cfg.CAFile == "":
		return errors.New("enroll: no CA file")
	case cfg.Dir == "":
		return errors.New("enroll: no state directory")
	case cfg.Log == nil:
		return errors.New("enroll: no logger")
	}
	if _, _, err := net.SplitHostPort(cfg.Controller); err != nil {
		return fmt.Errorf("enroll: controller address %q: want host:port", cfg.Controller)
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = []string{"host"}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// readToken reads and trims the token. Errors never include the file's content.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("enroll: read token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("enroll: token file %s is empty", path)
	}
	return token, nil
}

// call sends the enrollment request and maps refusals to the errors callers branch on.
func call(ctx context.Context, cfg Config, roots *x509.CertPool,
	req *wardv1.EnrollRequest) (*wardv1.EnrollResponse, error) {
	host, _, _ := net.SplitHostPort(cfg.Controller)
	tlsCfg := pki.ClientConfig(roots, host, nil)
	conn, err := grpc.NewClient(cfg.Controller,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, err := wardv1.NewEnrollmentServiceClient(conn).Enroll(ctx, req)
	switch status.Code(err) {
	case codes.OK:
		return resp, nil
	case codes.PermissionDenied:
		return nil, ErrRefused
	case codes.ResourceExhausted:
		return nil, ErrRateLimited
	}
	return nil, fmt.Errorf("enroll: call %s: %w", cfg.Controller, err)
}

// save checks the response against the key and writes the state directory.
func (cfg Config) save(key *ecdsa.PrivateKey, resp *wardv1.EnrollResponse) (state.Info, error) {
	info := state.Info{
		AgentID:     resp.GetAgentId(),
		Tenant:      resp.GetTenant(),
		TrustDomain: resp.GetTrustDomain(),
		Controller:  cfg.Controller,
		Roles:       cfg.Roles,
		EnrolledAt:  cfg.Now().UTC(),
	}
	if err := checkResponse(key, info, resp); err != nil {
		return state.Info{}, fmt.Errorf("enroll: controller answer unusable: %w", err)
	}

	if cfg.Force {
		if err := cfg.Dir.Clear(); err != nil {
			return state.Info{}, fmt.Errorf("enroll: %w", err)
		}
	}
	err := cfg.Dir.Save(state.Enrollment{
		Info:      info,
		Key:       key,
		Chain:     resp.GetCertificateChain(),
		CAs:       resp.GetCaCertificates(),
		PolicyKey: resp.GetPolicyPublicKey(),
	})
	if err != nil {
		return state.Info{}, fmt.Errorf("enroll: %w", err)
	}
	return info, nil
}

func checkResponse(key *ecdsa.PrivateKey, info state.Info, resp *wardv1.EnrollResponse) error {
	if err := info.ID().Validate(); err != nil {
		return err
	}
	if len(resp.GetCertificateChain()) == 0 || len(resp.GetCaCertificates()) == 0 {
		return errors.New("no certificate or no trust bundle")
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("certificate is not for this agent's key")
	}
	if id, err := identity.FromCertificate(leaf); err != nil || id != info.ID() {
		return fmt.Errorf("certificate names %v, want %s", id, info.ID())
	}
	for _, der := range resp.GetCaCertificates() {
		if _, err := x509.ParseCertificate(der); err != nil {
			return fmt.Errorf("trust bundle: %w", err)
		}
	}

	policy, err := x509.ParsePKIXPublicKey(resp.GetPolicyPublicKey())
	if err != nil {
		return fmt.Errorf("policy key: %w", err)
	}
	if ec, ok := policy.(*ecdsa.PublicKey); !ok || ec.Curve != elliptic.P256() {
		return errors.New("policy key is not ECDSA P-256")
	}
	if bytes.Equal(resp.GetPolicyPublicKey(), leaf.RawSubjectPublicKeyInfo) {
		return errors.New("policy key is the agent's own key")
	}
	return nil
}

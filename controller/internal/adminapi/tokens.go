package adminapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/logkey"
	wardv1 "github.com/wardsec/ward/proto/ward/v1"
)

// Token limits.
const (
	DefaultTokenTTL = 24 * time.Hour
	MaxTokenTTL     = 30 * 24 * time.Hour
	MaxTokenUses    = 1000
	maxTier         = 3
	secretBytes     = 20 // 160 bits
	idBytes         = 5  // 8 base32 characters
)

// b32 is lower-case base32 without padding: printable, case-insensitive, shell-safe.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CreateToken issues an enrollment token. Admin; technician within its tenants.
func (s *Server) CreateToken(ctx context.Context, req *wardv1.CreateTokenRequest) (
	*wardv1.CreateTokenResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if !identity.ValidName(req.GetTenant()) {
		return nil, invalid("tenant", "not a valid tenant id")
	}
	if err := sc.requireWrite(req.GetTenant()); err != nil {
		return nil, err
	}
	tok, err := tokenFromRequest(req, s.clock().UTC())
	if err != nil {
		return nil, err
	}
	if err := s.checkTenantArg(ctx, sc, "tenant", tok.Tenant); err != nil {
		return nil, err
	}

	secret, err := s.issue(ctx, &tok, sc.name())
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, sc, tok.Tenant, evidence.TypeTokenCreated, tok.ID,
		map[string]any{"expires_at": tok.ExpiresAt, "uses": tok.UsesLeft,
			"cidr": cidrText(tok), "tier": tok.Tier, "roles": tok.Roles}); err != nil {
		return nil, err
	}
	s.log.Info("token created", logkey.TokenID, tok.ID, logkey.Tenant, tok.Tenant,
		logkey.Operator, sc.name(), logkey.Count, tok.UsesLeft, logkey.Roles, tok.Roles)
	return &wardv1.CreateTokenResponse{Secret: secret, Token: tokenProto(tok)}, nil
}

// tokenFromRequest validates the request and fills in defaults.
func tokenFromRequest(req *wardv1.CreateTokenRequest, now time.Time) (store.Token, error) {
	ttl := DefaultTokenTTL
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return store.Token{}, invalid("ttl", "not a valid duration")
		}
		ttl = req.GetTtl().AsDuration()
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return store.Token{}, invalid("ttl", "must be above zero and at most 30 days")
	}
	uses := req.GetUses()
	if uses == 0 {
		uses = 1
	}
	if uses > MaxTokenUses {
		return store.Token{}, invalid("uses", "at most 1000")
	}
	tier := req.GetTier()
	if tier == 0 {
		tier = 1
	}
	if tier > maxTier {
		return store.Token{}, invalid("tier", "must be 1, 2 or 3")
	}
	var cidr netip.Prefix
	if c := strings.TrimSpace(req.GetCidr()); c != "" {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return store.Token{}, invalid("cidr", "not a network in CIDR notation")
		}
		cidr = p.Masked()
	}
	roles, err := store.NormalizeAgentRoles(req.GetRoles())
	if err != nil {
		return store.Token{}, invalid("roles", err.Error())
	}
	return store.Token{Tenant: req.GetTenant(), ExpiresAt: now.Add(ttl), UsesLeft: uses,
		CIDR: cidr, Tier: tier, CreatedAt: now, Roles: roles}, nil
}

// issue draws the token's id and secret, stores the token with the secret's hash, and
// returns the secret. A collision of id or hash (vanishingly rare) draws again.
func (s *Server) issue(ctx context.Context, tok *store.Token, by string) (string, error) {
	tok.CreatedBy = by
	for range 3 {
		id, secret := make([]byte, idBytes), make([]byte, secretBytes)
		rand.Read(id)
		rand.Read(secret)
		tok.ID = b32.EncodeToString(id)
		text := b32.EncodeToString(secret)
		sum := sha256.Sum256([]byte(text))
		tok.Hash = sum[:]

		err := s.store.CreateToken(ctx, *tok)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return "", s.internal(ctx, "create token", err)
		}
		return text, nil
	}
	return "", s.internal(ctx, "create token", errors.New("token id collisions"))
}

// ListTokens lists tokens the caller can see, newest first.
func (s *Server) ListTokens(ctx context.Context, req *wardv1.ListTokensRequest) (
	*wardv1.ListTokensResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetTenant() != "" {
		if err := s.checkTenantArg(ctx, sc, "tenant", req.GetTenant()); err != nil {
			return nil, err
		}
	}
	all, err := s.store.ListTokens(ctx, req.GetTenant())
	if err != nil {
		return nil, s.internal(ctx, "list tokens", err)
	}
	resp := &wardv1.ListTokensResponse{}
	for _, t := range all {
		if sc.canSee(t.Tenant) {
			resp.Tokens = append(resp.Tokens, tokenProto(t))
		}
	}
	return resp, nil
}

// RevokeToken makes a token unusable. Admin; technician within its tenants.
func (s *Server) RevokeToken(ctx context.Context, req *wardv1.RevokeTokenRequest) (
	*wardv1.RevokeTokenResponse, error) {
	sc, err := callerScope(ctx)
	if err != nil {
		return nil, err
	}
	if !identity.ValidName(req.GetId()) {
		return nil, invalid("id", "not a valid token id")
	}
	tok, err := s.findToken(ctx, sc, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := sc.requireWrite(tok.Tenant); err != nil {
		return nil, err
	}

	tok, err = s.store.RevokeToken(ctx, tok.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("token", req.GetId())
	}
	if err != nil {
		return nil, s.internal(ctx, "revoke token", err)
	}
	if err := s.record(ctx, sc, tok.Tenant, evidence.TypeTokenRevoked, tok.ID,
		nil); err != nil {
		return nil, err
	}
	s.log.Info("token revoked", logkey.TokenID, tok.ID, logkey.Tenant, tok.Tenant,
		logkey.Operator, sc.name())
	return &wardv1.RevokeTokenResponse{Token: tokenProto(tok)}, nil
}

// findToken returns the token with id if the caller can see it, else NotFound.
func (s *Server) findToken(ctx context.Context, sc scope, id string) (store.Token, error) {
	all, err := s.store.ListTokens(ctx, "")
	if err != nil {
		return store.Token{}, s.internal(ctx, "list tokens", err)
	}
	for _, t := range all {
		if t.ID == id && sc.canSee(t.Tenant) {
			return t, nil
		}
	}
	return store.Token{}, notFound("token", id)
}

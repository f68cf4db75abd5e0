package inventory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wardsec/ward/controller/internal/evidence"
	"github.com/wardsec/ward/controller/internal/store"
)

// BootstrapTokenTTL is how long a device's bootstrap token is valid.
const BootstrapTokenTTL = time.Hour

// Token secrets and ids look like those the admin API issues: base32, lower case.
var tokenB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(
	base32.NoPadding)

// mintToken stores a one-time enrollment token for the device, usable only from address
// and only for BootstrapTokenTTL, and returns its id and secret. The secret exists only
// in the returned value; the store keeps its hash.
func (inv *Inventory) mintToken(ctx context.Context, d store.Device, address string) (
	string, string, error) {
	ip, err := netip.ParseAddr(address)
	if err != nil {
		return "", "", fmt.Errorf("bootstrap token: address %q: %w", address, err)
	}
	tier := uint32(d.Tier)
	if tier < 1 || tier > 3 {
		tier = 1
	}
	now := inv.clock().UTC()
	tok := store.Token{Tenant: d.Tenant, ExpiresAt: now.Add(BootstrapTokenTTL), UsesLeft: 1,
		CIDR: netip.PrefixFrom(ip, ip.BitLen()), Tier: tier, CreatedAt: now,
		CreatedBy: "inventory:" + d.ID, Roles: []string{store.AgentRoleHost}}
	for range 3 {
		id, secret := make([]byte, 5), make([]byte, 20)
		rand.Read(id)
		rand.Read(secret)
		tok.ID = tokenB32.EncodeToString(id)
		text := tokenB32.EncodeToString(secret)
		sum := sha256.Sum256([]byte(text))
		tok.Hash = sum[:]

		err := inv.st.CreateToken(ctx, tok)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("bootstrap token: %w", err)
		}
		if _, err := inv.cfg.Recorder.Record(ctx, evidence.Entry{Tenant: d.Tenant,
			Type:    evidence.TypeTokenCreated,
			Actor:   evidence.Actor{Kind: evidence.ActorController, ID: controllerActor},
			Subject: tok.ID, Data: map[string]any{"device": d.ID, "cidr": tok.CIDR.String(),
				"uses": 1, "expires_at": tok.ExpiresAt}}); err != nil {
			return "", "", fmt.Errorf("record bootstrap token: %w", err)
		}
		return tok.ID, text, nil
	}
	return "", "", errors.New("bootstrap token: id collisions")
}

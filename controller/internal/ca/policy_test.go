package ca

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardsec/ward/pkg/policysig"
)

func signedOf(k *PolicyKey, typ string, payload []byte, t *testing.T) policysig.Signed {
	t.Helper()
	sp, err := k.Sign(typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	return policysig.Signed{PayloadType: sp.PayloadType, Payload: sp.Payload,
		Signature: sp.Signature, KeyID: sp.KeyId}
}

func TestPolicyKeySignsWhatPolicysigVerifies(t *testing.T) {
	dir := t.TempDir()
	if err := CreatePolicyKey(dir); err != nil {
		t.Fatalf("CreatePolicyKey: %v", err)
	}
	if err := CreatePolicyKey(dir); err == nil {
		t.Error("second CreatePolicyKey overwrote the key")
	}
	st, err := os.Stat(filepath.Join(dir, "policy/key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("policy key mode: %v %v", st, err)
	}
	k, err := LoadPolicyKey(dir)
	if err != nil {
		t.Fatalf("LoadPolicyKey: %v", err)
	}

	// The agent's side: it knows only the public DER it pinned.
	pinned, err := policysig.ParsePublicKey(k.PublicDER())
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if err := CreatePolicyKey(otherDir); err != nil {
		t.Fatal(err)
	}
	other, _ := LoadPolicyKey(otherDir)

	const cmd, base = "ward.v1.CommandSpec", "ward.v1.BaselineSpec"
	payload := []byte("restart sshd")
	good := signedOf(k, cmd, payload, t)
	relabelled := good
	relabelled.PayloadType = base // signed as one type, presented as another
	tamperedPayload := good
	tamperedPayload.Payload = []byte("rm -rf /")
	tamperedSig := good
	tamperedSig.Signature = append([]byte(nil), good.Signature...)
	tamperedSig.Signature[len(tamperedSig.Signature)-1] ^= 1
	foreign := signedOf(other, cmd, payload, t)
	foreignClaimingOurs := foreign
	foreignClaimingOurs.KeyID = good.KeyID

	tests := []struct {
		name     string
		s        policysig.Signed
		wantType string
		want     error
	}{
		{"valid", good, cmd, nil},
		{"expected another type", good, base, policysig.ErrWrongType},
		{"relabelled type", relabelled, base, policysig.ErrBadSignature},
		{"tampered payload", tamperedPayload, cmd, policysig.ErrBadSignature},
		{"tampered signature", tamperedSig, cmd, policysig.ErrBadSignature},
		{"other key", foreign, cmd, policysig.ErrUnknownKey},
		{"other key, our key id", foreignClaimingOurs, cmd, policysig.ErrBadSignature},
		{"zero value", policysig.Signed{}, cmd, policysig.ErrWrongType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := policysig.Verify(pinned, tt.wantType, tt.s)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLoadPolicyKeyRefusesMismatchedPublic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := CreatePolicyKey(d); err != nil {
			t.Fatal(err)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(b, "policy/public.pem"))
	if err := os.WriteFile(filepath.Join(a, "policy/public.pem"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicyKey(a); err == nil {
		t.Fatal("LoadPolicyKey accepted a public.pem of another key")
	}
}

package policysig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
)

func TestDigestSeparatesTypeFromPayload(t *testing.T) {
	if bytes.Equal(Digest("ab", []byte("c")), Digest("a", []byte("bc"))) {
		t.Fatal("type and payload boundary is ambiguous")
	}
}

func TestVerify(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, Digest("t.A", []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	s := Signed{PayloadType: "t.A", Payload: []byte("x"), Signature: sig, KeyID: id}

	if err := Verify(&key.PublicKey, "t.A", s); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	s.PayloadType = "t.B"
	if err := Verify(&key.PublicKey, "t.B", s); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("relabelled: Verify = %v, want ErrBadSignature", err)
	}
	if err := Verify(nil, "t.A", s); err == nil {
		t.Fatal("Verify accepted a nil key")
	}
}

func TestParsePublicKeyRefusesOtherCurves(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if _, err := ParsePublicKey(der); err == nil {
		t.Fatal("accepted a P-384 key")
	}
}

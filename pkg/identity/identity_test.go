package identity

import (
	"crypto/x509"
	"errors"
	"net/url"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	ids := []ID{
		Agent("msp.example", "clinic-a", "a1b2c3"),
		Operator("msp.example", "admin"),
		Controller("msp.example", "ctl-1"),
	}
	for _, want := range ids {
		got, err := Parse(want.String())
		if err != nil {
			t.Fatalf("Parse(%s): %v", want, err)
		}
		if got != want {
			t.Errorf("Parse(%s) = %+v, want %+v", want, got, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	bad := []string{
		"https://msp.example/operator/admin",
		"spiffe://msp.example/operator/Admin",
		"spiffe://msp.example/operator/admin/extra",
		"spiffe://msp.example/tenant/clinic-a/operator/x",
		"spiffe://msp.example/tenant/../agent/x",
		"spiffe://msp.example/tenant/clinic-a/agent/",
		"spiffe://msp.example:443/operator/admin",
		"spiffe://user@msp.example/operator/admin",
		"spiffe://msp.example/operator/admin?x=1",
		"spiffe:///operator/admin",
		"spiffe://msp.example/controller/a..b",
	}
	for _, s := range bad {
		if id, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", s, id)
		}
	}
}

func TestFromCertificate(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	one := &x509.Certificate{URIs: []*url.URL{u("spiffe://d.example/operator/alice")}}
	if id, err := FromCertificate(one); err != nil || id != Operator("d.example", "alice") {
		t.Errorf("FromCertificate = %+v, %v", id, err)
	}

	none := &x509.Certificate{URIs: []*url.URL{u("https://d.example/")}}
	if _, err := FromCertificate(none); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no spiffe uri: err = %v, want ErrNoIdentity", err)
	}

	two := &x509.Certificate{URIs: []*url.URL{
		u("spiffe://d.example/operator/alice"), u("spiffe://d.example/operator/bob"),
	}}
	if _, err := FromCertificate(two); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("two spiffe uris: err = %v, want ErrNoIdentity", err)
	}
}

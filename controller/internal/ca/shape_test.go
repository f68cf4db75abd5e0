package ca

import (
	"reflect"
	"testing"
	"time"

	"github.com/wardsec/ward/pkg/identity"
	"github.com/wardsec/ward/pkg/pki"
)

// TestAgentShapeMatchesTemplate checks that an agent leaf copied from the CA's shape is
// the very certificate the template renders for it, and that leaves made from the shape
// share no serial or key id.
func TestAgentShapeMatchesTemplate(t *testing.T) {
	c, _ := newCA(t)
	for _, tt := range []struct{ tenant, agent string }{
		{"clinic-a", "0123456789abcdef"},
		{"t", "a"},
		{"north-clinic-with-a-long-name", "agent-1"},
	} {
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		l := leaf{id: identity.Agent(domain, tt.tenant, tt.agent), commonName: tt.agent,
			org: tt.tenant, ttl: time.Hour, usage: clientUsage, agent: true}
		got, err := c.leafTemplate(key.Public(), l)
		if err != nil {
			t.Fatal(err)
		}
		want, err := renderLeaf(key.Public(), l)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s/%s: shaped leaf\n%+v\nwant the rendered\n%+v", tt.tenant, tt.agent,
				got, want)
		}
	}

	k1, _ := pki.NewKey()
	k2, _ := pki.NewKey()
	_, a, err := c.SignAgentKey(k1.Public(), "clinic-a", "agent-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := c.SignAgentKey(k2.Public(), "clinic-a", "agent-2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 || string(a.SubjectKeyId) == string(b.SubjectKeyId) {
		t.Error("two agent leaves share a serial or a subject key id")
	}
	if a.Subject.CommonName != "agent-1" || b.Subject.CommonName != "agent-2" ||
		b.URIs[0].String() != identity.Agent(domain, "clinic-a", "agent-2").String() {
		t.Errorf("leaves name %v %v and %v %v", a.Subject, a.URIs, b.Subject, b.URIs)
	}
}

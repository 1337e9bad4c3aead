package devcluster

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

func TestPKIVerifiesAndIsReused(t *testing.T) {
	dir := t.TempDir()
	p, err := ensurePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.caPEM) {
		t.Fatal("ca.crt is not a PEM certificate")
	}
	b, err := os.ReadFile(p.path("apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc", serviceIP} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("apiserver certificate for %s: %v", name, err)
		}
	}
	for _, f := range []string{"ca.key", "apiserver.key", "sa.key"} {
		fi, err := os.Stat(p.path(f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
	csv, _ := os.ReadFile(p.path("tokens.csv"))
	if !strings.Contains(string(csv), `,admin,uid-admin,"system:masters"`) {
		t.Errorf("tokens.csv lacks the admin line:\n%s", csv)
	}
	again, err := ensurePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.caPEM) != string(p.caPEM) || again.tokens[userAdmin] != p.tokens[userAdmin] {
		t.Error("a second ensurePKI made a new PKI instead of loading the existing one")
	}
}

func TestKwokConfigHasEveryStage(t *testing.T) {
	path := t.TempDir() + "/kwok.yaml"
	if err := writeKwokConfig(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if n := strings.Count(s, "kind: Stage\n"); n != 9 {
		t.Errorf("%d stages; want 9", n)
	}
	for _, want := range []string{"kind: KwokConfiguration", "nodeLeaseParallelism: 4", "name: pvc-provision", "name: node-heartbeat-with-lease"} {
		if !strings.Contains(s, want) {
			t.Errorf("kwok.yaml lacks %q", want)
		}
	}
}

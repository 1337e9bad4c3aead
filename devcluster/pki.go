package devcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Users with a bearer token in tokens.csv. kwok and admin are in
// system:masters; the controller manager and the scheduler get their
// bootstrap RBAC roles by user name.
const (
	userAdmin     = "admin"
	userKCM       = "system:kube-controller-manager"
	userScheduler = "system:kube-scheduler"
	userKwok      = "kwok"
)

// pki is the cluster's certificate authority, serving certificate,
// service-account key pair and bearer tokens, as files in dir.
type pki struct {
	dir    string
	caPEM  []byte
	tokens map[string]string // user name -> token
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// ensurePKI loads the PKI from dir, or creates it there when any file is
// missing. Certificates are valid for 10 years and only for loopback names.
func ensurePKI(dir string) (*pki, error) {
	p := &pki{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := p.load(); err == nil {
		return p, nil
	}
	if err := p.create(); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return p, nil
}

func (p *pki) load() error {
	for _, f := range []string{"apiserver.crt", "apiserver.key", "sa.key", "sa.pub"} {
		if _, err := os.Stat(p.path(f)); err != nil {
			return err
		}
	}
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	tokens, err := readTokens(p.path("tokens.csv"))
	if err != nil {
		return err
	}
	p.caPEM, p.tokens = ca, tokens
	return nil
}

func (p *pki) create() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mengi-devcluster-ca"},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP(serviceIP)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, srvKey.Public(), caKey)
	if err != nil {
		return fmt.Errorf("apiserver certificate: %w", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tokens := map[string]string{}
	for _, u := range []string{userAdmin, userKCM, userScheduler, userKwok} {
		tokens[u] = randomHex(24)
	}
	p.caPEM = pemBlock("CERTIFICATE", caDER)
	files := []struct {
		name string
		data func() ([]byte, error)
	}{
		{"ca.key", func() ([]byte, error) { return privatePEM(caKey) }},
		{"apiserver.crt", func() ([]byte, error) { return pemBlock("CERTIFICATE", srvDER), nil }},
		{"apiserver.key", func() ([]byte, error) { return privatePEM(srvKey) }},
		{"sa.key", func() ([]byte, error) { return privatePEM(saKey) }},
		{"sa.pub", func() ([]byte, error) { return publicPEM(saKey.Public()) }},
		{"tokens.csv", func() ([]byte, error) { return tokensCSV(tokens), nil }},
		// ca.crt last: load() treats it as the marker of a complete PKI.
		{"ca.crt", func() ([]byte, error) { return p.caPEM, nil }},
	}
	for _, f := range files {
		b, err := f.data()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(p.path(f.name), b, 0o600); err != nil {
			return err
		}
	}
	p.tokens = tokens
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, see crypto/rand.Read
	return hex.EncodeToString(b)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func privatePEM(k crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func publicPEM(k crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PUBLIC KEY", der), nil
}

// tokenGroups returns the groups of user in tokens.csv.
func tokenGroups(user string) string {
	if user == userAdmin || user == userKwok {
		return "system:masters"
	}
	return ""
}

// tokensCSV renders kube-apiserver's --token-auth-file:
// token,user,uid[,"group1,group2"].
func tokensCSV(tokens map[string]string) []byte {
	var out []byte
	for _, u := range []string{userAdmin, userKCM, userScheduler, userKwok} {
		line := fmt.Sprintf("%s,%s,uid-%s", tokens[u], u, u)
		if g := tokenGroups(u); g != "" {
			line += fmt.Sprintf(",%q", g)
		}
		out = append(out, line+"\n"...)
	}
	return out
}

func readTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tokens := map[string]string{}
	for _, rec := range recs {
		if len(rec) >= 2 {
			tokens[rec[1]] = rec[0]
		}
	}
	for _, u := range []string{userAdmin, userKCM, userScheduler, userKwok} {
		if tokens[u] == "" {
			return nil, errors.New(path + ": no token for " + u)
		}
	}
	return tokens, nil
}

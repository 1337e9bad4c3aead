package fetchguard

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "s3cret-Pa55"

func TestParseCredentials(t *testing.T) {
	c, err := ParseCredentials([]byte(`
https://charts.example.com/private/:
  username: ci
  password: ` + secret + `
https://charts.example.com:
  token: tok-` + secret + `
oci://registry.example.com:5000/charts:
  username: robot
  password: ` + secret + `
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.entries) != 3 || c.entries[0].path != "/private" {
		t.Fatalf("entries %v; want the longest path first, without its trailing slash", c.entries)
	}
	if cred, ok := c.Registry("oci://registry.example.com:5000/charts/mini"); !ok || cred.Username != "robot" {
		t.Errorf("Registry(charts/mini) = %v, %v", cred, ok)
	}
	for _, ref := range []string{"oci://registry.example.com:5000/other/mini", "oci://registry.example.com/charts/mini", "oci://registry.example.com:5000/chartsx/mini"} {
		if _, ok := c.Registry(ref); ok {
			t.Errorf("Registry(%s) found a credential", ref)
		}
	}
	// JSON is YAML too.
	if _, err := ParseCredentials([]byte(`{"https://a.example": {"token": "x"}}`)); err != nil {
		t.Errorf("JSON: %v", err)
	}

	for name, file := range map[string]string{
		"token and password":    "https://a.example:\n  username: u\n  password: " + secret + "\n  token: " + secret + "\n",
		"no password":           "https://a.example:\n  username: u\n",
		"password, no username": "https://a.example:\n  password: " + secret + "\n",
		"unknown key":           "https://a.example:\n  username: u\n  passwd: " + secret + "\n",
		"other scheme":          "ftp://a.example:\n  token: " + secret + "\n",
		"no host":               "https://:\n  token: " + secret + "\n",
		"userinfo in the URL":   "https://u:" + secret + "@a.example:\n  token: x\n",
		"query":                 "https://a.example/?x=1:\n  token: " + secret + "\n",
		"not a mapping":         "- " + secret + "\n",
		"bad YAML":              "https://a.example:\n  token: [" + secret + "\n",
	} {
		_, err := ParseCredentials([]byte(file))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

func TestLoadCredentials(t *testing.T) {
	p := filepath.Join(t.TempDir(), "creds.yaml")
	if err := os.WriteFile(p, []byte("https://a.example:\n  token: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCredentials(p)
	if err != nil || len(c.entries) != 1 {
		t.Fatalf("LoadCredentials: %v, %v", c, err)
	}
	if _, err := LoadCredentials(p + ".missing"); err == nil || !strings.Contains(err.Error(), "fetch credentials") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCredentialNeverPrinted(t *testing.T) {
	cred := Credential{Username: "ci", Password: secret}
	tok := Credential{Token: secret}
	for _, s := range []string{fmt.Sprint(cred), fmt.Sprintf("%v %+v %#v %s", cred, cred, cred, cred), fmt.Sprint(tok), fmt.Sprintf("%#v", tok)} {
		if strings.Contains(s, secret) {
			t.Errorf("printed: %s", s)
		}
	}
}

// TestCredentialsPerHop: credentials go to their scheme, host, port and
// path prefix on every hop, and nowhere else: not to another port of the
// same host, not to another name of the same address, not outside the
// path, even when the caller put them on the request itself.
func TestCredentialsPerHop(t *testing.T) {
	other := serveOn(t, "127.0.0.1:0", nil)
	var repo *recorder
	repo = serveOn(t, "127.0.0.1:0", func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/charts/to-other-port":
			http.Redirect(w, req, other.URL+"/charts/x.tgz", http.StatusFound)
		case "/charts/to-localhost":
			http.Redirect(w, req, strings.Replace(repo.URL, "127.0.0.1", "localhost", 1)+"/charts/x.tgz", http.StatusFound)
		case "/charts/to-outside":
			http.Redirect(w, req, "/public/x.tgz", http.StatusFound)
		case "/charts/to-inside":
			http.Redirect(w, req, "/charts/y.tgz", http.StatusFound)
		default:
			fmt.Fprint(w, "ok")
		}
	})
	creds, err := ParseCredentials([]byte(repo.URL + "/charts:\n  username: ci\n  password: " + secret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := newGuard(t, Options{Allow: []string{"127.0.0.1", "localhost"}, Credentials: creds})
	for _, path := range []string{"/charts/index.yaml", "/charts/to-other-port", "/charts/to-localhost", "/charts/to-outside", "/charts/to-inside", "/public/index.yaml", "/chartsx"} {
		if body, err := get(t, g, repo.URL+path); err != nil || body != "ok" {
			t.Errorf("%s: %q, %v", path, body, err)
		}
	}
	// The caller's own copy of the header (as a registry client sets it
	// for a token service on another host) is dropped too.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, other.URL+"/token", nil)
	req.SetBasicAuth("ci", secret)
	if resp, err := g.Client().Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	want := map[string]bool{ // path on the repo → has the credential
		"/charts/index.yaml": true, "/charts/to-other-port": true, "/charts/to-localhost": true,
		"/charts/to-outside": true, "/charts/to-inside": true, "/charts/y.tgz": true,
		"/charts/x.tgz":      false, // the hop to localhost
		"/public/index.yaml": false, "/public/x.tgz": false, "/chartsx": false,
	}
	for _, r := range repo.requests() {
		user, pass, ok := r.BasicAuth()
		if has := ok && user == "ci" && pass == secret; has != want[r.URL.Path] {
			t.Errorf("%s (Host %s): credential sent %v; want %v", r.URL.Path, r.Host, has, want[r.URL.Path])
		}
	}
	for _, r := range other.requests() {
		if h := r.Header.Get("Authorization"); h != "" {
			t.Errorf("the server on another port got Authorization %q at %s", h, r.URL.Path)
		}
	}
	if n := len(other.requests()); n != 2 {
		t.Errorf("the other server got %d requests; want 2", n)
	}
}

func TestBearerToken(t *testing.T) {
	srv := serveOn(t, "127.0.0.1:0", nil)
	creds, err := ParseCredentials([]byte(srv.URL + ":\n  token: " + secret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, newGuard(t, Options{Allow: []string{"127.0.0.1"}, Credentials: creds}), srv.URL+"/index.yaml"); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests()[0].Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("Authorization %q; want the bearer token", got)
	}
}

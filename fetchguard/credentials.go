package fetchguard

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Credentials are the operator's credentials for private chart
// repositories and registries, by URL prefix. They come from a file on the
// agent's machine (LoadCredentials), never from Git. The zero value and
// nil hold none.
//
// The file is YAML (or JSON) mapping a URL prefix to a username and
// password (HTTP Basic) or a token (HTTP Bearer; for registries, an access
// token):
//
//	https://charts.example.com/private:   # scheme://host[:port][/path prefix]
//	  username: ci
//	  password: s3cret
//	oci://registry.example.com/charts:
//	  username: robot
//	  password: s3cret
//	https://charts.other.example:
//	  token: eyJhbGciOi...
//
// An https:// or http:// prefix applies to every request whose scheme,
// host and port are the prefix's and whose path is at or below its path
// (the longest prefix wins). An oci:// prefix applies to the charts of
// that registry whose repository path is at or below its path; its
// credentials go to that registry's host and port only.
type Credentials struct {
	entries []credEntry // longest path first
}

// Credential is a username and password, or a token. Its String never
// shows the secret.
type Credential struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// String shows who the credential is for, never the secret.
func (c Credential) String() string {
	if c.Token != "" {
		return "token ***"
	}
	return "user " + c.Username + " password ***"
}

// GoString is String, so %#v never shows the secret either.
func (c Credential) GoString() string { return c.String() }

// header is the Authorization header the credential sends.
func (c Credential) header() string {
	if c.Token != "" {
		return "Bearer " + c.Token
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}

type credEntry struct {
	scheme string // https, http or oci
	host   string // host:port, lowercase, with the scheme's default port
	path   string // without a trailing "/"; "" for the whole host
	cred   Credential
	auth   string // cred.header()
}

// LoadCredentials reads a credentials file (see Credentials).
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fetch credentials: %w", err)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, fmt.Errorf("fetch credentials %s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials reads the content of a credentials file. Its errors
// never contain a password or token.
func ParseCredentials(data []byte) (*Credentials, error) {
	var raw map[string]Credential
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, fmt.Errorf("not a mapping of URL prefixes to {username, password} or {token}: %s", yamlProblem(err))
	}
	c := &Credentials{}
	for prefix, cred := range raw {
		e, err := newCredEntry(prefix, cred)
		if err != nil {
			return nil, err
		}
		c.entries = append(c.entries, e)
	}
	slices.SortFunc(c.entries, func(a, b credEntry) int { return len(b.path) - len(a.path) })
	return c, nil
}

// yamlProblem shortens a YAML error (which names lines and fields, never
// values).
func yamlProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	return strings.TrimPrefix(msg, "error unmarshaling JSON: while decoding JSON: ")
}

func newCredEntry(prefix string, cred Credential) (credEntry, error) {
	u, err := url.Parse(prefix)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") {
		return credEntry{}, fmt.Errorf("%q is not a URL prefix scheme://host[:port][/path] with scheme https, http or oci", redactPrefix(prefix))
	}
	basic := cred.Username != "" || cred.Password != ""
	switch {
	case basic && cred.Token != "":
		return credEntry{}, fmt.Errorf("%s: give username and password, or token, not both", u)
	case cred.Token == "" && (cred.Username == "" || cred.Password == ""):
		return credEntry{}, fmt.Errorf("%s: give username and password, or token", u)
	}
	return credEntry{
		scheme: u.Scheme,
		host:   hostPort(u.Scheme, u.Host),
		path:   strings.TrimRight(u.EscapedPath(), "/"),
		cred:   cred,
		auth:   cred.header(),
	}, nil
}

// redactPrefix hides the userinfo of a URL that has one.
func redactPrefix(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// hostPort is host:port in lowercase with the scheme's default port.
func hostPort(scheme, host string) string {
	host = strings.ToLower(host)
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// underPath reports whether path is prefix or below it.
func underPath(path, prefix string) bool {
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// covers reports whether e's credentials may go with a request to u.
func (e *credEntry) covers(u *url.URL) bool {
	if u.Scheme != "https" && u.Scheme != "http" {
		return false
	}
	if e.scheme == "oci" { // the registry's host and port, any path (API, token)
		return hostPort(u.Scheme, u.Host) == e.host
	}
	return u.Scheme == e.scheme && hostPort(u.Scheme, u.Host) == e.host && underPath(u.EscapedPath(), e.path)
}

// forRequest returns the entry whose credentials a request to u gets: an
// https or http entry, longest path first.
func (c *Credentials) forRequest(u *url.URL) *credEntry {
	if c == nil {
		return nil
	}
	for i := range c.entries {
		if e := &c.entries[i]; e.scheme != "oci" && e.covers(u) {
			return e
		}
	}
	return nil
}

// Registry returns the credential configured for the OCI repository ref
// (oci://host[:port]/path or host[:port]/path): the oci:// entry of its
// registry with the longest path at or above ref's path.
func (c *Credentials) Registry(ref string) (Credential, bool) {
	if c == nil {
		return Credential{}, false
	}
	u, err := url.Parse("oci://" + strings.TrimPrefix(ref, "oci://"))
	if err != nil || u.Host == "" {
		return Credential{}, false
	}
	host, path := hostPort("oci", u.Host), strings.TrimRight(u.EscapedPath(), "/")
	for _, e := range c.entries {
		if e.scheme == "oci" && e.host == host && underPath(path, e.path) {
			return e.cred, true
		}
	}
	return Credential{}, false
}

// authorize sets or strips the Authorization header of req for its URL:
// a header that carries one of the configured credentials is removed unless
// an entry with that credential covers req's URL (so a redirect, or a
// registry's token service on another host, never receives it); a request
// without one gets the credential of the https/http entry that covers it.
// It returns req itself when nothing changes, else a clone.
func (c *Credentials) authorize(req *http.Request) *http.Request {
	if c == nil || len(c.entries) == 0 {
		return req
	}
	if got := req.Header.Get("Authorization"); got != "" {
		if !c.isConfigured(got) || c.allows(got, req.URL) {
			return req
		}
		req = req.Clone(req.Context())
		req.Header.Del("Authorization")
		return req
	}
	if e := c.forRequest(req.URL); e != nil {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", e.auth)
	}
	return req
}

func (c *Credentials) isConfigured(auth string) bool {
	return slices.ContainsFunc(c.entries, func(e credEntry) bool { return e.auth == auth })
}

func (c *Credentials) allows(auth string, u *url.URL) bool {
	return slices.ContainsFunc(c.entries, func(e credEntry) bool { return e.auth == auth && e.covers(u) })
}

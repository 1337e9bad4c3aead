package forge

import (
	"fmt"
	"net/url"
	"strings"
)

// Endpoint is where a repository's API lives: the Kind, APIURL and Repo of
// Options.
type Endpoint struct {
	Kind   string
	APIURL string
	Repo   string // owner/name
}

// ParseCloneURL derives the API endpoint from a repository's clone URL.
// kind is KindGitea, KindGitHub or "" to guess: GitHub for github.com, Gitea
// for any other host.
//
//	https://github.com/o/r.git               → github, https://api.github.com, o/r
//	git@github.com:o/r.git                   → github, https://api.github.com, o/r
//	https://ghe.example.com/o/r.git (github) → github, https://ghe.example.com/api/v3, o/r
//	http://127.0.0.1:3000/o/r.git            → gitea,  http://127.0.0.1:3000/api/v1, o/r
//	https://example.com/git/o/r.git          → gitea,  https://example.com/git/api/v1, o/r
//
// Credentials in the URL are dropped. A Gitea clone URL must be http(s): the
// API's port cannot be told from an SSH URL.
func ParseCloneURL(cloneURL, kind string) (Endpoint, error) {
	bad := func(why string) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("forge: clone URL %q: %s", redactURL(cloneURL), why)
	}
	switch kind {
	case "", KindGitea, KindGitHub:
	default:
		return bad(fmt.Sprintf("unknown kind %q", kind))
	}
	raw := strings.TrimSpace(cloneURL)
	var scheme, host, path string
	if i := strings.Index(raw, "://"); i >= 0 {
		u, err := url.Parse(raw)
		if err != nil {
			return bad("not a URL")
		}
		scheme, host, path = u.Scheme, u.Host, u.Path
	} else if at, colon := strings.Index(raw, "@"), strings.Index(raw, ":"); colon > 0 && at < colon {
		// scp-like: [user@]host:owner/name.git
		scheme, host, path = "ssh", raw[at+1:colon], raw[colon+1:]
	} else {
		return bad("not a URL")
	}
	if host == "" {
		return bad("no host")
	}
	segs := strings.FieldsFunc(strings.TrimSuffix(strings.TrimRight(path, "/"), ".git"), func(r rune) bool { return r == '/' })
	if len(segs) < 2 {
		return bad("no owner/name in the path")
	}
	owner, name := segs[len(segs)-2], segs[len(segs)-1]
	prefix := segs[:len(segs)-2]
	hostname := strings.ToLower(host)
	if h, _, ok := strings.Cut(hostname, ":"); ok && !strings.HasPrefix(hostname, "[") {
		hostname = h
	}
	if kind == "" {
		kind = KindGitea
		if hostname == "github.com" || hostname == "www.github.com" {
			kind = KindGitHub
		}
	}
	ep := Endpoint{Kind: kind, Repo: owner + "/" + name}
	switch {
	case kind == KindGitHub && (hostname == "github.com" || hostname == "www.github.com"):
		ep.APIURL = "https://api.github.com"
		return ep, nil
	case scheme != "http" && scheme != "https":
		return bad("the API URL of a " + kind + " server cannot be derived from a " + scheme + " URL; use http(s)")
	}
	base := scheme + "://" + host
	if len(prefix) > 0 {
		base += "/" + strings.Join(prefix, "/")
	}
	if kind == KindGitHub {
		ep.APIURL = base + "/api/v3"
	} else {
		ep.APIURL = base + "/api/v1"
	}
	return ep, nil
}

// redactURL hides the credentials (a token, usually, as user or password)
// of a URL for messages.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s // scp-like: user@host:path holds no secret
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

package schema

import "strings"

// msgURLUserinfo refuses a helm_repo_url with a user name or password.
const msgURLUserinfo = "Value error, helm_repo_url must not contain a user name or password: " +
	"credentials for private chart repositories and registries are configured by the operator " +
	"(mengi agent --fetch-credentials), never in Git"

// URLHasUserinfo reports whether a URL (scheme://authority/...) has a
// userinfo part (user@ or user:password@) in its authority. It looks at
// the text as written, so a URL that net/url cannot parse is judged too.
func URLHasUserinfo(s string) bool {
	_, authority, ok := splitAuthority(s)
	return ok && strings.Contains(authority, "@")
}

// RedactURL replaces the userinfo of a URL with "***"
// (https://***@host/path), and returns other text as it is.
func RedactURL(s string) string {
	scheme, authority, ok := splitAuthority(s)
	if !ok {
		return s
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return s
	}
	return scheme + "://***@" + s[len(scheme)+3+at+1:]
}

// splitAuthority returns the scheme and the authority of scheme://authority/...
func splitAuthority(s string) (scheme, authority string, ok bool) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/?#@") {
		return "", "", false
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	return scheme, rest, true
}

// redactInputs replaces the userinfo of every URL in the problems' inputs
// (strings, and strings inside an object or list input, as a "missing"
// problem echoes its object) with "***", so that no error answer or
// message repeats a password.
func (es Errors) redactInputs() Errors {
	for i := range es {
		es[i].Input = redactValue(es[i].Input)
	}
	return es
}

// redactValue returns v with the userinfo of every URL string in it
// redacted; maps and lists are copied, not changed.
func redactValue(v any) any {
	switch x := v.(type) {
	case string:
		if URLHasUserinfo(x) {
			return RedactURL(x)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(e)
		}
		return out
	}
	return v
}

package fetchguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// MaxRedirects is how many redirects one request may follow.
const MaxRedirects = 5

// Unreachable ends the text of every refused or failed connection.
const Unreachable = "the host could not be reached or is not allowed"

// Options configure a Guard. The zero value is the strictest guard: public
// addresses only, no proxy, no credentials, no logs.
type Options struct {
	// Allow admits addresses that are not public: each entry is a CIDR
	// ("10.20.0.0/16", "fd00:1::/64"), one address ("127.0.0.1", "::1"),
	// or a host name ("charts.internal"), which is admitted whatever it
	// resolves to (the operator trusts their DNS for it).
	Allow []string
	// Proxy, when set, is an http:// or https:// proxy that every fetch
	// goes through. The proxy itself may be on a private address; each
	// target host is resolved and checked before the request is sent (the
	// proxy resolves it again, so DNS rebinding is not covered there).
	// Empty: direct connections; HTTP_PROXY and HTTPS_PROXY are ignored.
	Proxy string
	// Credentials are sent to the hosts they are configured for. Nil: none.
	Credentials *Credentials
	// Logger receives the real cause of refused and failed connections, at
	// debug level. Nil: discarded.
	Logger *slog.Logger
	// LookupIP resolves host names. Nil: net.DefaultResolver. For tests.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Guard makes guarded HTTP clients. It is safe for concurrent use; its
// clients share one connection pool.
type Guard struct {
	allowNets  []netip.Prefix
	allowHosts map[string]bool
	proxy      *url.URL
	proxyAddr  string // host:port of proxy
	creds      *Credentials
	log        *slog.Logger
	lookup     func(ctx context.Context, host string) ([]netip.Addr, error)
	transport  *http.Transport
	admitted   func(netip.Addr) error // tests: sees each address control lets through
}

// New makes a Guard. It fails on an allow-list entry that is neither a
// CIDR, an address nor a host name, and on a bad proxy URL.
func New(opts Options) (*Guard, error) {
	g := &Guard{allowHosts: map[string]bool{}, creds: opts.Credentials, log: opts.Logger, lookup: opts.LookupIP}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.lookup == nil {
		g.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	for _, a := range opts.Allow {
		if err := g.addAllowed(a); err != nil {
			return nil, err
		}
	}
	if opts.Proxy != "" {
		u, err := url.Parse(opts.Proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("fetchguard: proxy %q is not an http:// or https:// URL", redactPrefix(opts.Proxy))
		}
		g.proxy, g.proxyAddr = u, hostPort(u.Scheme, u.Host)
	}
	g.transport = g.newTransport()
	return g, nil
}

// addAllowed adds one allow-list entry.
func (g *Guard) addAllowed(entry string) error {
	s := strings.TrimSpace(entry)
	if p, err := netip.ParsePrefix(s); err == nil {
		g.allowNets = append(g.allowNets, unmapPrefix(p.Masked()))
		return nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		ip = ip.Unmap().WithZone("")
		g.allowNets = append(g.allowNets, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(s), ".")
	if !isHostName(host) {
		return fmt.Errorf("fetchguard: allow-list entry %q is not a CIDR, an IP address or a host name", entry)
	}
	g.allowHosts[host] = true
	return nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96).
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
				return false
			}
		}
	}
	return true
}

// Allowed reports whether a connection to ip may be made: ip is public,
// or in the allow-list.
func (g *Guard) Allowed(ip netip.Addr) bool { return g.refusal(ip) == nil }

// refusal explains why ip may not be dialled, or returns nil.
func (g *Guard) refusal(ip netip.Addr) *Refusal {
	class := Classify(ip)
	if class == "" {
		return nil
	}
	plain := ip.Unmap().WithZone("")
	for _, p := range g.allowNets {
		if p.Contains(plain) {
			return nil
		}
	}
	return &Refusal{Addr: ip, Class: class}
}

// Refusal is the cause of a connection the guard refused (behind an
// *Error's Unwrap). Its text is for the operator's log, never for a
// deployment's status.
type Refusal struct {
	Addr  netip.Addr
	Class string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("fetchguard: %s is a %s address and not in the allow-list", r.Addr, r.Class)
}

// Error is every refused or failed connection of a guarded client: its
// text is the same whatever happened (`cannot fetch <url>: the host could
// not be reached or is not allowed`); Unwrap returns the real cause (a
// *Refusal, a dial or TLS error, context.DeadlineExceeded, ...), for logs
// and errors.Is, never to be shown to a deployment's author.
type Error struct {
	// URL is the URL that could not be fetched, without userinfo.
	URL   string
	cause error
}

func (e *Error) Error() string { return "cannot fetch " + e.URL + ": " + Unreachable }

// Unwrap returns the real cause.
func (e *Error) Unwrap() error { return e.cause }

// At returns the same error naming url (e.g. the oci:// reference a user
// wrote instead of the registry API URL that failed).
func (e *Error) At(url string) *Error { return &Error{URL: url, cause: e.cause} }

// fail logs why a fetch of u failed, at debug level, and returns the
// uniform error.
func (g *Guard) fail(u *url.URL, cause error) *Error {
	where := Redact(u)
	g.log.Debug("fetch refused or failed", "url", where, "cause", cause.Error())
	return &Error{URL: where, cause: cause}
}

// Redact is u without userinfo, query or fragment (a query can carry a
// signature or token).
func Redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// Client returns an HTTP client whose connections, redirects and
// credentials are guarded. No overall timeout: bound requests with their
// context.
func (g *Guard) Client() *http.Client {
	return &http.Client{Transport: g, CheckRedirect: g.CheckRedirect}
}

// RoundTrip sends one request (one hop) through the guard: http and https
// only, credentials for its URL alone, the target checked before a proxy
// is asked, and every failure as an *Error.
func (g *Guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		closeBody(req)
		return nil, g.fail(req.URL, fmt.Errorf("fetchguard: scheme %q is not http or https", req.URL.Scheme))
	}
	if g.proxy != nil {
		if err := g.checkHost(req.Context(), req.URL.Hostname()); err != nil {
			closeBody(req)
			return nil, g.fail(req.URL, err)
		}
	}
	resp, err := g.transport.RoundTrip(g.creds.authorize(req))
	if err != nil {
		return nil, g.fail(req.URL, err)
	}
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// CheckRedirect allows at most MaxRedirects redirects, to http and https
// URLs only, and drops the headers that carry credentials when a hop
// leaves the first request's scheme, host and port (Go keeps them for the
// same host on another port, and for subdomains).
func (g *Guard) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return g.fail(via[0].URL, fmt.Errorf("fetchguard: more than %d redirects (to %s)", MaxRedirects, Redact(req.URL)))
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return g.fail(via[0].URL, fmt.Errorf("fetchguard: redirect to scheme %q", req.URL.Scheme))
	}
	if origin(req.URL) != origin(via[0].URL) {
		for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
			req.Header.Del(h)
		}
	}
	return nil
}

func origin(u *url.URL) string { return u.Scheme + "://" + hostPort(u.Scheme, u.Host) }

// newTransport is an http.Transport that dials through the guard, with
// timeouts for connecting, TLS and waiting for headers.
func (g *Guard) newTransport() *http.Transport {
	t := &http.Transport{
		DialContext:           g.dialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	if g.proxy != nil {
		t.Proxy = http.ProxyURL(g.proxy)
	}
	return t
}

// checkHost resolves host and refuses it when any of its addresses is
// refused (used before a request goes to a proxy).
func (g *Guard) checkHost(ctx context.Context, host string) error {
	if g.allowHosts[normalHost(host)] {
		return nil
	}
	ips, err := g.resolve(ctx, host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if r := g.refusal(ip); r != nil {
			return r
		}
	}
	return nil
}

func normalHost(host string) string { return strings.TrimSuffix(strings.ToLower(host), ".") }

// resolve returns host's addresses (host itself when it is an address).
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{ip}, nil
	}
	ips, err := g.lookup(ctx, host)
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("fetchguard: %s has no address", host)
	}
	return ips, err
}

// errNoIP is returned when a dialled address is not an IP address.
var errNoIP = errors.New("fetchguard: the dialled address is not an IP address")

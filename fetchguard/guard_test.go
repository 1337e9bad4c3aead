package fetchguard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// newGuard makes a guard for a test. As a safety net under the code being
// tested, any address other than loopback that gets past the guard's check
// fails the test and is not dialled: the network here is loopback only.
func newGuard(t *testing.T, opts Options) *Guard {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.admitted = func(ip netip.Addr) error {
		if !ip.Unmap().IsLoopback() {
			t.Errorf("the guard let %s through; refusing it in the test", ip)
			return fmt.Errorf("test: %s is not loopback", ip)
		}
		return nil
	}
	t.Cleanup(g.transport.CloseIdleConnections)
	return g
}

// recorder is an HTTP server on a loopback address that records requests.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func serveOn(t *testing.T, addr string, h http.HandlerFunc) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	r := &recorder{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Clone(context.Background()))
		r.mu.Unlock()
		if h == nil {
			fmt.Fprint(w, "ok")
			return
		}
		h(w, req)
	}))
	r.Listener.Close()
	r.Listener = ln
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

func get(t *testing.T, g *Guard, url string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// wantRefused checks that err is the guard's uniform error for url and,
// when class is not "", that the guard refused an address of that class.
func wantRefused(t *testing.T, err error, url, class string) {
	t.Helper()
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T); want a *fetchguard.Error", err, err)
	}
	if want := "cannot fetch " + url + ": " + Unreachable; ge.Error() != want {
		t.Errorf("error text %q; want %q", ge.Error(), want)
	}
	var r *Refusal
	switch {
	case class == "":
	case !errors.As(err, &r):
		t.Errorf("cause %v; want a refusal of a %s address", ge.Unwrap(), class)
	case r.Class != class:
		t.Errorf("refused %s as %s; want %s", r.Addr, r.Class, class)
	}
}

func TestAllowedFetch(t *testing.T) {
	srv := serveOn(t, "127.0.0.1:0", nil)
	g := newGuard(t, Options{Allow: []string{"127.0.0.1/32"}})
	if body, err := get(t, g, srv.URL+"/x"); err != nil || body != "ok" {
		t.Fatalf("allowed fetch: %q, %v", body, err)
	}
}

// TestRefused: addresses that are not public are refused without an
// allow-list, by the dial's Control hook, at once.
func TestRefused(t *testing.T) {
	v4 := serveOn(t, "127.0.0.1:0", nil)
	v6 := serveOn(t, "[::1]:0", nil)
	_, port, _ := net.SplitHostPort(v4.Listener.Addr().String())
	cases := []struct{ name, url, class string }{
		{"127.0.0.1", v4.URL + "/index.yaml", ClassLoopback},
		{"[::1]", v6.URL + "/index.yaml", ClassLoopback},
		{"localhost", "http://localhost:" + port + "/index.yaml", ClassLoopback},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port + "/index.yaml", ClassLoopback},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", ClassLinkLocal},
		{"private", "http://10.0.0.1/charts/index.yaml", ClassPrivate},
		{"private https", "https://10.0.0.1/charts/index.yaml", ClassPrivate},
		{"IPv6 unique local", "http://[fd00:ec2::254]/latest/", ClassPrivate},
		{"CGNAT", "http://100.64.0.1:8080/", ClassShared},
		{"unspecified", "http://0.0.0.0:" + port + "/", ClassUnspecified},
		{"broadcast", "http://255.255.255.255/", ClassBroadcast},
	}
	g := newGuard(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			_, err := get(t, g, tc.url)
			wantRefused(t, err, tc.url, tc.class)
			if took := time.Since(begin); took > 2*time.Second {
				t.Errorf("refused after %s; the guard must refuse before connecting", took)
			}
		})
	}
	if n := len(v4.requests()) + len(v6.requests()); n != 0 {
		t.Errorf("the servers got %d requests", n)
	}
}

// TestUniformText: a closed port and a refused address read alike.
func TestUniformText(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/charts/index.yaml"
	ln.Close()
	_, closedErr := get(t, newGuard(t, Options{Allow: []string{"127.0.0.1"}}), url)
	_, refusedErr := get(t, newGuard(t, Options{}), url)
	_, dnsErr := get(t, newGuard(t, Options{LookupIP: func(context.Context, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "charts.example", IsNotFound: true}
	}}), "http://charts.example/charts/index.yaml")
	if closedErr == nil || refusedErr == nil || dnsErr == nil {
		t.Fatalf("errors %v, %v, %v", closedErr, refusedErr, dnsErr)
	}
	var a, b *Error
	if !errors.As(closedErr, &a) || !errors.As(refusedErr, &b) || a.Error() != b.Error() {
		t.Errorf("closed port: %q\nrefused:     %q\nwant the same text", a, b)
	}
	wantRefused(t, dnsErr, "http://charts.example/charts/index.yaml", "")
	if !errors.Is(closedErr, syscall.ECONNREFUSED) {
		t.Errorf("the closed port's cause %v is not ECONNREFUSED", a.Unwrap())
	}
}

// TestTLSFailureUniform: a TLS server whose certificate is not trusted
// gives the uniform text.
func TestTLSFailureUniform(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake fails, as it should
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, err := get(t, newGuard(t, Options{Allow: []string{"127.0.0.1"}}), srv.URL+"/index.yaml")
	wantRefused(t, err, srv.URL+"/index.yaml", "")
}

// TestRedirects: every hop is checked; at most MaxRedirects; only http(s).
func TestRedirects(t *testing.T) {
	other := serveOn(t, "127.0.0.2:0", nil)
	v6 := serveOn(t, "[::1]:0", nil)
	var loop *recorder
	loop = serveOn(t, "127.0.0.1:0", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, loop.URL+req.URL.Path+"x", http.StatusFound)
	})
	first := serveOn(t, "127.0.0.1:0", func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/to-127.0.0.2":
			http.Redirect(w, req, other.URL+"/secret", http.StatusFound)
		case "/to-v6":
			http.Redirect(w, req, v6.URL+"/secret", http.StatusMovedPermanently)
		case "/to-metadata":
			http.Redirect(w, req, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
		case "/to-file":
			http.Redirect(w, req, "file:///etc/passwd", http.StatusFound)
		case "/to-ftp":
			http.Redirect(w, req, "ftp://127.0.0.1/x", http.StatusFound)
		default:
			fmt.Fprint(w, "ok")
		}
	})
	g := newGuard(t, Options{Allow: []string{"127.0.0.1/32"}})
	for _, tc := range []struct{ path, class string }{
		{"/to-127.0.0.2", ClassLoopback},
		{"/to-v6", ClassLoopback},
		{"/to-metadata", ClassLinkLocal},
		{"/to-file", ""},
		{"/to-ftp", ""},
	} {
		_, err := get(t, g, first.URL+tc.path)
		var ge *Error
		if !errors.As(err, &ge) || !strings.HasSuffix(ge.Error(), ": "+Unreachable) {
			t.Errorf("%s: %v; want the uniform error", tc.path, err)
			continue
		}
		var r *Refusal
		if tc.class != "" && (!errors.As(err, &r) || r.Class != tc.class) {
			t.Errorf("%s: cause %v; want a refused %s address", tc.path, ge.Unwrap(), tc.class)
		}
	}
	if n := len(other.requests()) + len(v6.requests()); n != 0 {
		t.Errorf("the disallowed servers got %d requests", n)
	}

	_, err := get(t, g, loop.URL+"/r")
	wantRefused(t, err, loop.URL+"/r", "")
	if n := len(loop.requests()); n != MaxRedirects+1 {
		t.Errorf("%d requests for an endless redirect; want %d", n, MaxRedirects+1)
	}
}

// TestRebinding: the check is on the address dialled, whatever the name
// (here resolved by a test resolver) stood for.
func TestRebinding(t *testing.T) {
	srv := serveOn(t, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var lookups []string
	var mu sync.Mutex
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups = append(lookups, host)
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	url := "http://charts.rebind.example:" + port + "/index.yaml"
	_, err := get(t, newGuard(t, Options{LookupIP: lookup}), url)
	wantRefused(t, err, url, ClassLoopback)
	if len(lookups) != 1 || lookups[0] != "charts.rebind.example" {
		t.Errorf("lookups %v; want one of charts.rebind.example", lookups)
	}
	if len(srv.requests()) != 0 {
		t.Errorf("the server got a request")
	}

	// Admitted by address, or by name: the same name connects.
	for _, allow := range []string{"127.0.0.1/32", "charts.rebind.example"} {
		if body, err := get(t, newGuard(t, Options{LookupIP: lookup, Allow: []string{allow}}), url); err != nil || body != "ok" {
			t.Errorf("allowed %s: %q, %v", allow, body, err)
		}
	}
}

// TestProxy: only an explicit proxy is used; the target is checked first.
func TestProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	proxy := serveOn(t, "127.0.0.1:0", func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprint(w, "via proxy: "+req.URL.String())
	})
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "charts.example":
			return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil // never dialled: the proxy is
		case "internal.example":
			return []netip.Addr{netip.MustParseAddr("203.0.113.8"), netip.MustParseAddr("10.1.2.3")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	g := newGuard(t, Options{Proxy: proxy.URL, LookupIP: lookup})
	body, err := get(t, g, "http://charts.example/index.yaml")
	if err != nil || body != "via proxy: http://charts.example/index.yaml" {
		t.Errorf("through the proxy: %q, %v", body, err)
	}
	for _, url := range []string{"http://internal.example/index.yaml", "http://10.0.0.1/index.yaml", "http://169.254.169.254/"} {
		_, err := get(t, g, url)
		wantRefused(t, err, url, "")
	}
	if n := len(proxy.requests()); n != 1 {
		t.Errorf("the proxy got %d requests; want 1 (refused targets never reach it)", n)
	}

	// Without Proxy, HTTP_PROXY is ignored: the request goes direct.
	srv := serveOn(t, "127.0.0.1:0", nil)
	if body, err := get(t, newGuard(t, Options{Allow: []string{"127.0.0.1"}}), srv.URL); err != nil || body != "ok" {
		t.Errorf("direct with HTTP_PROXY set: %q, %v", body, err)
	}
	if _, err := New(Options{Proxy: "socks5://127.0.0.1:1080"}); err == nil {
		t.Errorf("a socks5 proxy was accepted")
	}
}

// TestDebugLog: the real cause goes to the debug log; the error text
// keeps it out.
func TestDebugLog(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err := get(t, newGuard(t, Options{Logger: log}), "http://169.254.169.254/latest/meta-data/")
	if strings.Contains(err.Error(), "link-local") {
		t.Errorf("error text %q tells the cause", err)
	}
	if !strings.Contains(logs.String(), "169.254.169.254 is a link-local address") || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("the debug log lacks the cause:\n%s", logs.String())
	}
}

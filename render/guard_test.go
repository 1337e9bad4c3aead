package render_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/render"
)

// listenOn serves h on addr (a loopback address) and counts its requests.
func listenOn(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, req)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// wantUnreachable checks that err is the guard's one text for url, as a
// temporary ChartUnavailable at helm_repo_url, and (class not "") that the
// guard refused an address of that class.
func wantUnreachable(t *testing.T, err error, url, class string) {
	t.Helper()
	re := wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url")
	if want := "helm_repo_url: cannot fetch " + url + ": " + fetchguard.Unreachable; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	if !re.Temporary {
		t.Errorf("error %q is not Temporary (a refusal must look like any failed connection)", err)
	}
	var r *fetchguard.Refusal
	if class != "" && (!errors.As(err, &r) || r.Class != class) {
		t.Errorf("cause %v; want the guard's refusal of a %s address", errors.Unwrap(re.Err), class)
	}
}

// TestFetchGuard: without an allow-list, every fetch of a chart from an
// address that is not public is refused, before connecting, with the one
// text; the same fetches succeed with the allow-list.
func TestFetchGuard(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	v6, v6Requests := listenOn(t, "[::1]:0", repo.Config.Handler)
	reg := newOCIRegistry(t)
	reg.push(t, v1, "mini", "0.1.0")
	_, port, _ := net.SplitHostPort(repo.Listener.Addr().String())
	_, regPort, _ := net.SplitHostPort(reg.Listener.Addr().String())

	// Never a packet to these: check that the guard refuses them before
	// asking it to fetch from them.
	strict, err := fetchguard.New(fetchguard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"169.254.169.254", "10.0.0.1"} {
		if strict.Allowed(netip.MustParseAddr(ip)) {
			t.Fatalf("the guard allows %s", ip)
		}
	}
	cases := []struct {
		name, repoURL, failingURL, class string
	}{
		{"127.0.0.1", repo.RepoURL(), repo.RepoURL() + "/index.yaml", fetchguard.ClassLoopback},
		{"[::1]", v6.URL + "/charts", v6.URL + "/charts/index.yaml", fetchguard.ClassLoopback},
		{"localhost", "http://localhost:" + port + "/charts", "http://localhost:" + port + "/charts/index.yaml", fetchguard.ClassLoopback},
		{"cloud metadata", "http://169.254.169.254/latest", "http://169.254.169.254/latest/index.yaml", fetchguard.ClassLinkLocal},
		{"private", "https://10.0.0.1/charts", "https://10.0.0.1/charts/index.yaml", fetchguard.ClassPrivate},
		{"oci://localhost", "oci://localhost:" + regPort + "/charts", "oci://localhost:" + regPort + "/charts/mini:0.1.0", fetchguard.ClassLoopback},
		{"oci://127.0.0.1", "oci://127.0.0.1:" + regPort + "/charts", "oci://127.0.0.1:" + regPort + "/charts/mini:0.1.0", fetchguard.ClassLoopback},
		{"oci://10.0.0.1", "oci://10.0.0.1/charts", "oci://10.0.0.1/charts/mini:0.1.0", fetchguard.ClassPrivate},
	}
	before := repo.requests.Load()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			_, err := newRenderer(t, render.Options{}).Render(testContext(t), helmDeployment(t, helmCase, tc.repoURL), nil)
			wantUnreachable(t, err, tc.failingURL, tc.class)
			if took := time.Since(begin); took > 2*time.Second {
				t.Errorf("refused after %s; the guard refuses before connecting", took)
			}
		})
	}
	if n := repo.requests.Load() - before + v6Requests.Load(); n != 0 {
		t.Errorf("the repositories got %d requests", n)
	}

	// The allow-list admits them.
	allowAll := fetchguard.Options{Allow: []string{"127.0.0.1/32", "::1/128"}}
	for _, u := range []string{repo.RepoURL(), v6.URL + "/charts", "http://localhost:" + port + "/charts", "oci://localhost:" + regPort + "/charts"} {
		if _, err := newRenderer(t, render.Options{Fetch: allowAll}).Render(testContext(t), helmDeployment(t, helmCase, u), nil); err != nil {
			t.Errorf("%s with the allow-list: %v", u, err)
		}
	}
}

// TestFetchGuardRedirect: an allowed repository that redirects the archive
// to an address outside the allow-list (127.0.0.2, [::1]) is refused; the
// other server is never asked.
func TestFetchGuardRedirect(t *testing.T) {
	v1, _ := miniVersions(t)
	archive := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(v1) })
	other, otherRequests := listenOn(t, "127.0.0.2:0", archive)
	v6, v6Requests := listenOn(t, "[::1]:0", archive)
	for _, target := range []*httptest.Server{other, v6} {
		repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1, url: "redirect.tgz"})
		repo.Config.Handler = redirecting(repo.Config.Handler, "/charts/redirect.tgz", target.URL+"/mini-0.1.0.tgz")
		_, err := newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), helmDeployment(t, helmCase, repo.RepoURL()), nil)
		wantUnreachable(t, err, repo.RepoURL()+"/redirect.tgz", fetchguard.ClassLoopback)
	}
	if n := otherRequests.Load() + v6Requests.Load(); n != 0 {
		t.Errorf("the servers outside the allow-list got %d requests", n)
	}
}

func redirecting(next http.Handler, path, to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == path {
			http.Redirect(w, req, to, http.StatusFound)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// TestFetchGuardRebinding: the guard checks the address dialled, not the
// name: a name that resolves to loopback is refused, and connects when
// that address is allowed.
func TestFetchGuardRebinding(t *testing.T) {
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	_, port, _ := net.SplitHostPort(repo.Listener.Addr().String())
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "charts.rebind.example" {
			t.Errorf("lookup of %s", host)
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	repoURL := "http://charts.rebind.example:" + port + "/charts"
	d := helmDeployment(t, helmCase, repoURL)
	_, err := newRenderer(t, render.Options{Fetch: fetchguard.Options{LookupIP: lookup}}).Render(testContext(t), d, nil)
	wantUnreachable(t, err, repoURL+"/index.yaml", fetchguard.ClassLoopback)
	if n := repo.requests.Load(); n != 0 {
		t.Errorf("the repository got %d requests", n)
	}
	allowed := fetchguard.Options{LookupIP: lookup, Allow: []string{"127.0.0.1/32"}}
	if _, err := newRenderer(t, render.Options{Fetch: allowed}).Render(testContext(t), d, nil); err != nil {
		t.Errorf("with 127.0.0.1 allowed: %v", err)
	}
}

// TestFetchUniformText: a closed port and a refused address give the same
// bytes.
func TestFetchUniformText(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	d := helmDeployment(t, helmCase, closed.URL+"/charts")
	_, closedErr := newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), d, nil)
	_, refusedErr := newRenderer(t, render.Options{}).Render(testContext(t), d, nil)
	if closedErr == nil || refusedErr == nil || closedErr.Error() != refusedErr.Error() {
		t.Errorf("closed port: %v\nrefused:     %v\nwant the same text", closedErr, refusedErr)
	}
	var r *fetchguard.Refusal
	if errors.As(closedErr, &r) || !errors.As(refusedErr, &r) {
		t.Errorf("causes: %v, %v; want a refusal for the second only", errors.Unwrap(errors.Unwrap(closedErr)), r)
	}
}

// TestUserinfoNotFetched: a repository URL with credentials in it (a file
// that skipped validation) is InvalidSpec, never fetched, never repeated.
func TestUserinfoNotFetched(t *testing.T) {
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	withPass := strings.Replace(repo.RepoURL(), "http://", "http://ci:"+testPassword+"@", 1)
	_, err := newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), helmDeployment(t, helmCase, withPass), nil)
	wantError(t, err, render.ReasonInvalidSpec, "helm_repo_url", "http://***@127.0.0.1", "not allowed")
	if strings.Contains(err.Error(), testPassword) || repo.requests.Load() != 0 {
		t.Errorf("error %q, %d requests", err, repo.requests.Load())
	}
}

const testPassword = "pa55-W0rd-for-tests"

// basicAuth lets through requests with user ci and testPassword, and
// records every Authorization header it saw.
type basicAuth struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (b *basicAuth) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, req.Header.Get("Authorization"))
	b.mu.Unlock()
	if user, pass, ok := req.BasicAuth(); !ok || user != "ci" || pass != testPassword {
		w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	b.next.ServeHTTP(w, req)
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func credentials(t *testing.T, file string) *fetchguard.Credentials {
	t.Helper()
	c, err := fetchguard.ParseCredentials([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFetchCredentials: a chart repository behind Basic auth works with
// the operator's credentials and is ChartUnavailable without; an archive
// redirected to another port of the same host never gets them; they are in
// no error and no log line.
func TestFetchCredentials(t *testing.T) {
	v1, _ := miniVersions(t)
	var elsewhere []string
	var mu sync.Mutex
	other, _ := listenOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, req.Header.Get("Authorization"))
		mu.Unlock()
		w.Write(v1)
	}))
	repo := newChartRepo(t,
		repoChart{name: "mini", version: "0.1.0", data: v1},
		repoChart{name: "moved", version: "0.1.0", data: v1, url: "moved.tgz"})
	guarded := &basicAuth{next: redirecting(repo.Config.Handler, "/charts/moved.tgz", other.URL+"/mini-0.1.0.tgz")}
	repo.Config.Handler = guarded
	creds := credentials(t, repo.RepoURL()+":\n  username: ci\n  password: "+testPassword+"\n")
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	withCreds := render.Options{Logger: log, Fetch: fetchguard.Options{Allow: allowLoopback.Allow, Credentials: creds}}

	if _, err := newRenderer(t, withCreds).Render(testContext(t), helmDeployment(t, helmCase, repo.RepoURL()), nil); err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	_, err := newRenderer(t, render.Options{Logger: log, Fetch: allowLoopback}).Render(testContext(t), helmDeployment(t, helmCase, repo.RepoURL()), nil)
	re := wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url", "401 Unauthorized", "--fetch-credentials")
	if re.Temporary {
		t.Errorf("a 401 is Temporary: %v", err)
	}

	// The archive of "moved" is redirected to another port: the fetch
	// works, and that server never sees the credentials.
	d := helmDeployment(t, helmCase, repo.RepoURL())
	d.Spec.HelmChartName = ptr("moved")
	_, err = newRenderer(t, withCreds).Render(testContext(t), d, nil)
	wantError(t, err, render.ReasonChartUnavailable, "helm_chart_name", `serves chart "mini" where "moved"`) // it got the archive
	mu.Lock()
	if len(elsewhere) != 1 || elsewhere[0] != "" {
		t.Errorf("the server on another port got Authorization %q; want one request without", elsewhere)
	}
	mu.Unlock()
	for _, text := range []string{err.Error(), re.Error(), logs.String()} {
		if strings.Contains(text, testPassword) || strings.Contains(text, "cGE1NS1XMHJk") /* base64 of the password's start */ {
			t.Errorf("the password is in %q", text)
		}
	}
}

// TestOCICredentials: a registry behind Basic auth serves the chart with
// the operator's credentials, and is ChartUnavailable without or with a
// wrong password.
func TestOCICredentials(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	v1, _ := miniVersions(t)
	open := newOCIRegistry(t)
	open.push(t, v1, "mini", "0.1.0")
	// The private registry is the open one's handler behind Basic auth.
	guarded := &basicAuth{next: open.Config.Handler}
	private, _ := listenOn(t, "127.0.0.1:0", guarded)
	host := strings.TrimPrefix(private.URL, "http://")
	repoURL := "oci://" + host + "/charts"
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := func(file string) render.Options {
		o := render.Options{Logger: log, Fetch: allowLoopback}
		if file != "" {
			o.Fetch.Credentials = credentials(t, file)
		}
		return o
	}
	good := "oci://" + host + "/charts:\n  username: ci\n  password: " + testPassword + "\n"
	rel, err := newRenderer(t, opts(good)).Render(testContext(t), helmDeployment(t, helmCase, repoURL), nil)
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	if rel.ChartRef != "mini 0.1.0 sha256:"+sha256Hex(v1) {
		t.Errorf("ChartRef %q", rel.ChartRef)
	}
	for name, file := range map[string]string{
		"no credentials":    "",
		"wrong password":    "oci://" + host + "/charts:\n  username: ci\n  password: wrong\n",
		"another path":      "oci://" + host + "/other:\n  username: ci\n  password: " + testPassword + "\n",
		"an http:// prefix": "http://" + host + "/charts:\n  username: ci\n  password: " + testPassword + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newRenderer(t, opts(file)).Render(testContext(t), helmDeployment(t, helmCase, repoURL), nil)
			if re := wantError(t, err, render.ReasonChartUnavailable, "helm_repo_url", "--fetch-credentials"); re.Temporary {
				t.Errorf("Temporary: %v", err)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Errorf("the log holds the password")
	}
}

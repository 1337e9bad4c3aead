package servercmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mengi-cloud/gitops/registry"
)

// capRequest is a request through a capped handler, done in a goroutine
// of the test's bubble.
func capRequest(h http.Handler, path string, credentials bool) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if credentials {
			r.Header.Set("Authorization", "Bearer mc_not_checked")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		done <- w
	}()
	return done
}

// checkBusy fails the test unless w is the cap's 503 with detail.
func checkBusy(t *testing.T, w *httptest.ResponseRecorder, detail string) {
	t.Helper()
	var body struct{ Detail string }
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" ||
		w.Header().Get("Content-Type") != "application/json" || body.Detail != detail {
		t.Errorf("answer %d %v %q, want 503 with Retry-After: 1 and detail %q", w.Code, w.Header(), w.Body, detail)
	}
}

// TestRequestLimit fills a cap of 4 with requests carrying credentials
// that wait in the handler: one without credentials is taken while fewer
// than 2 are in progress and refused from 2 on, one with credentials
// until 4; refusals are at once, 503 with Retry-After and a JSON detail;
// /healthz is never refused. Once the handler returns, all are taken
// again.
func TestRequestLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max = 4
		release := make(chan struct{})
		h := newRequestLimit(max, slog.New(slog.DiscardHandler)).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/wait" {
				<-release
			}
			w.Write([]byte("ok"))
		}))
		quick := func(path string, credentials bool) *httptest.ResponseRecorder {
			return <-capRequest(h, path, credentials)
		}
		var waiting []<-chan *httptest.ResponseRecorder
		for i := range max {
			w := quick("/", false)
			if 2*i < max && w.Code != http.StatusOK {
				t.Errorf("%d in progress: a request without credentials got %d, want 200", i, w.Code)
			}
			if 2*i >= max {
				checkBusy(t, w, fmt.Sprintf("Server busy: %d requests in progress, and a request without credentials is taken only while fewer than half of 4 are; retry after 1 s", i))
			}
			if w := quick("/", true); w.Code != http.StatusOK {
				t.Errorf("%d in progress: a request with credentials got %d, want 200", i, w.Code)
			}
			waiting = append(waiting, capRequest(h, "/wait", true))
			synctest.Wait()
		}
		checkBusy(t, quick("/", true), "Server busy: 4 requests in progress, the most it handles at once; retry after 1 s")
		checkBusy(t, quick("/", false), "Server busy: 4 requests in progress, and a request without credentials is taken only while fewer than half of 4 are; retry after 1 s")
		if w := quick("/healthz", false); w.Code != http.StatusOK {
			t.Errorf("/healthz at the cap: %d", w.Code)
		}
		close(release)
		for _, c := range waiting {
			if w := <-c; w.Code != http.StatusOK {
				t.Errorf("a request that waited got %d", w.Code)
			}
		}
		for _, credentials := range []bool{false, true} {
			if w := quick("/", credentials); w.Code != http.StatusOK {
				t.Errorf("after the others ended, credentials %v: %d", credentials, w.Code)
			}
		}
	})
}

// TestRequestLimitExact: of 30 requests arriving together at a cap of 8,
// exactly 8 are taken, however they race; no cap at 0.
func TestRequestLimitExact(t *testing.T) {
	for _, c := range []struct{ max, taken int }{{8, 8}, {0, 30}} {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			h := newRequestLimit(c.max, slog.New(slog.DiscardHandler)).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
			var all []<-chan *httptest.ResponseRecorder
			for range 30 {
				all = append(all, capRequest(h, "/", true))
			}
			synctest.Wait()
			close(release)
			taken := 0
			for _, d := range all {
				if w := <-d; w.Code == http.StatusOK {
					taken++
				}
			}
			if taken != c.taken {
				t.Errorf("cap %d: %d of 30 taken, want %d", c.max, taken, c.taken)
			}
		})
	}
}

// TestServeAPIRequestLimit: ServeAPI with --max-requests 4 on a real
// socket. Requests to a mount that wait fill it; past 2 the API refuses
// a request without a key, past 4 one with a key (a made-up key: the cap
// does not check it), while /healthz still answers; then all are served.
func TestServeAPIRequestLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	repos, err := registry.OpenRepos(ctx, t.TempDir()+"/repo", "", log)
	if err != nil {
		t.Fatal(err)
	}
	defer repos.Close()
	// entered holds one value per waiting request, so none blocks on it
	// if the test ends early; released ends them all however it ends.
	entered, release := make(chan struct{}, 4), make(chan struct{})
	var releaseOnce sync.Once
	released := func() { releaseOnce.Do(func() { close(release) }) }
	wait := Mount{Path: "/wait", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ServeAPI(ctx, repos, "127.0.0.1:0", 5*time.Second, 0, 4, log, func(a string) { addr <- a }, wait)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeAPI: %v", err)
		}
	}()
	defer released()
	base := "http://" + <-addr
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(path, auth string) (code int, retryAfter, detail string, err error) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body struct{ Detail string }
		json.Unmarshal(b, &body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), body.Detail, nil
	}
	get := func(path, auth string) (int, string, string) {
		t.Helper()
		code, retryAfter, detail, err := do(path, auth)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return code, retryAfter, detail
	}
	waiting := make(chan error, 4)
	fill := func(n int) {
		for range n {
			go func() {
				code, _, _, err := do("/wait", "Basic Z2l0Om1jX3g=")
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("status %d", code)
				}
				waiting <- err
			}()
			<-entered
		}
	}
	const bogus = "Bearer mc_0000000000000000000000000000000000000000"

	fill(2)
	if code, retry, detail := get("/openapi.json", ""); code != http.StatusServiceUnavailable || retry != "1" ||
		detail != "Server busy: 2 requests in progress, and a request without credentials is taken only while fewer than half of 4 are; retry after 1 s" {
		t.Errorf("2 in progress, no key: %d Retry-After %q %q", code, retry, detail)
	}
	if code, _, _ := get("/openapi.json", bogus); code != http.StatusOK {
		t.Errorf("2 in progress, a key: %d", code)
	}
	fill(2)
	if code, retry, detail := get("/deployments", bogus); code != http.StatusServiceUnavailable || retry != "1" ||
		detail != "Server busy: 4 requests in progress, the most it handles at once; retry after 1 s" {
		t.Errorf("4 in progress, a key: %d Retry-After %q %q", code, retry, detail)
	}
	if code, _, _ := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("4 in progress, /healthz: %d", code)
	}
	released()
	for range 4 {
		if err := <-waiting; err != nil {
			t.Errorf("a request that waited: %v", err)
		}
	}
	if code, _, _ := get("/openapi.json", ""); code != http.StatusOK {
		t.Errorf("after them, no key: %d", code)
	}
	if code, _, detail := get("/deployments", bogus); code != http.StatusUnauthorized {
		t.Errorf("after them, a made-up key: %d %q, want 401 from the API", code, detail)
	}
}

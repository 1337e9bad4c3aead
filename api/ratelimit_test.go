package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/api"
)

// TestRateLimitPerKey: a key over its budget gets 429 with Retry-After and
// a JSON detail, another key is not slowed by it, and the budget refills
// with time.
func TestRateLimitPerKey(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(api.New(e.store, e.reg, api.Options{Now: e.clock.Now, RateLimit: 2}))
	t.Cleanup(srv.Close)
	get := func(key string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/deployments", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// The burst is two seconds' worth: 4 requests, then 429.
	for i := range 4 {
		if resp := get(e.alice.key); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i+1, resp.StatusCode)
		}
	}
	resp := get(e.alice.key)
	var body strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	body.Write(buf[:n])
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(body.String(), `"detail":"Too Many Requests: this API key is limited to 2 requests per second`) {
		t.Errorf("over the budget: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body.String())
	}
	if resp := get(e.bob.key); resp.StatusCode != http.StatusOK {
		t.Errorf("another key: %d", resp.StatusCode)
	}
	e.clock.Advance(time.Second)
	if resp := get(e.alice.key); resp.StatusCode != http.StatusOK {
		t.Errorf("a second later: %d", resp.StatusCode)
	}
}

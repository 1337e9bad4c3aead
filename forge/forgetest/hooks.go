package forgetest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Delivery is one webhook request received by a HookSink.
type Delivery struct {
	Event     string      // X-Gitea-Event (also sent as X-GitHub-Event): push, pull_request, ...
	EventType string      // X-Gitea-Event-Type: push, pull_request, pull_request_sync, ...
	Header    http.Header // every header
	Body      []byte
	// SignatureOK says whether X-Hub-Signature-256 is "sha256=" and the hex
	// HMAC-SHA256 of Body with the sink's secret.
	SignatureOK bool
	Payload     map[string]any // Body decoded
	Received    time.Time
}

// Action returns the payload's "action" ("opened", "synchronized",
// "closed", ... for pull_request events; "" for push).
func (d Delivery) Action() string { s, _ := d.Payload["action"].(string); return s }

// HookSink is an HTTP server on 127.0.0.1 that records webhook deliveries.
type HookSink struct {
	t      T
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	got    []Delivery
	notify chan struct{}
}

// NewHookSink starts a sink that checks signatures with secret; it stops when
// t ends.
func NewHookSink(t T, secret string) *HookSink {
	t.Helper()
	s := &HookSink{t: t, secret: []byte(secret), notify: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL returns the sink's URL, to give to Forge.AddWebhook.
func (s *HookSink) URL() string { return s.srv.URL + "/hook" }

func (s *HookSink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	d := Delivery{
		Event: r.Header.Get("X-Gitea-Event"), EventType: r.Header.Get("X-Gitea-Event-Type"),
		Header: r.Header.Clone(), Body: body, Received: time.Now(),
		SignatureOK: hmac.Equal([]byte(r.Header.Get("X-Hub-Signature-256")), []byte(want)),
	}
	_ = json.Unmarshal(body, &d.Payload)
	s.mu.Lock()
	s.got = append(s.got, d)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// Deliveries returns every delivery received so far, in order.
func (s *HookSink) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.got...)
}

// Wait returns the first delivery that match accepts, waiting up to 30 s for
// it; it fails the test after that, naming what arrived.
func (s *HookSink) Wait(what string, match func(Delivery) bool) Delivery {
	s.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		for _, d := range s.Deliveries() {
			if match(d) {
				return d
			}
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			var seen []string
			for _, d := range s.Deliveries() {
				seen = append(seen, d.EventType+"/"+d.Action())
			}
			s.t.Fatalf("forgetest: webhook %s: not delivered within %v (received: %s)", what, waitLimit, strings.Join(seen, ", "))
		}
	}
}

// PushTo matches a push event to branch whose "after" is sha.
func PushTo(branch, sha string) func(Delivery) bool {
	return func(d Delivery) bool {
		return d.Event == "push" && d.Payload["ref"] == "refs/heads/"+branch && d.Payload["after"] == sha
	}
}

// PullRequest matches a pull_request event of pull request number with the
// given action.
func PullRequest(number int, action string) func(Delivery) bool {
	return func(d Delivery) bool {
		n, _ := d.Payload["number"].(float64)
		return d.Event == "pull_request" && int(n) == number && d.Action() == action
	}
}

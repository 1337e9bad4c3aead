package hooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/hooks"
)

type syncs struct{ n int }

func (s *syncs) Sync() { s.n++ }

type queue struct{ prs []hooks.PullRequest }

func (q *queue) Enqueue(pr hooks.PullRequest) { q.prs = append(q.prs, pr) }

const secret = "s3cret"

func sign(body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

const head = "0123456789abcdef0123456789abcdef01234567"

func TestDeliveries(t *testing.T) {
	push := `{"ref":"refs/heads/main","before":"` + head + `","after":"` + head + `"}`
	pr := func(action, base string) string {
		return `{"action":"` + action + `","number":7,"pull_request":{"number":7,"head":{"sha":"` + head + `"},"base":{"ref":"` + base + `"}}}`
	}
	for _, c := range []struct {
		name         string
		event, body  string
		header       map[string]string // signature headers; nil: X-Hub-Signature-256 of the body
		status       int
		detail       string
		synced, prs  int
		giteaHeaders bool
	}{
		{name: "push to main (GitHub)", event: "push", body: push, status: 202, detail: "fetching main", synced: 1},
		{name: "push to main (Gitea)", event: "push", body: push, status: 202, synced: 1, giteaHeaders: true},
		{name: "push to a branch", event: "push", body: `{"ref":"refs/heads/feature"}`, status: 200, detail: "ignored: a push to refs/heads/feature"},
		{name: "no signature", event: "push", body: push, header: map[string]string{}, status: 401, detail: "missing signature"},
		{name: "wrong signature", event: "push", body: push, header: map[string]string{"X-Hub-Signature-256": "sha256=" + sign("other")}, status: 401, detail: "does not match"},
		{name: "signature not hex", event: "push", body: push, header: map[string]string{"X-Gitea-Signature": "zz"}, status: 401, detail: "not hexadecimal"},
		{name: "not JSON", event: "push", body: `{"ref":`, status: 400, detail: "not valid JSON"},
		{name: "ref of the wrong type", event: "push", body: `{"ref":3}`, status: 400, detail: "field ref: expected string"},
		{name: "no ref", event: "push", body: `{}`, status: 400, detail: "field ref is missing"},
		{name: "no event", event: "", body: push, status: 400, detail: "no event"},
		{name: "ping", event: "ping", body: `{}`, status: 200, detail: "pong"},
		{name: "other event", event: "issues", body: `{}`, status: 200, detail: "ignored: event issues"},
		{name: "PR opened", event: "pull_request", body: pr("opened", "main"), status: 202, detail: "checking pull request #7", prs: 1},
		{name: "PR synchronized (Gitea)", event: "pull_request", body: pr("synchronized", "main"), status: 202, prs: 1, giteaHeaders: true},
		{name: "PR synchronize (GitHub)", event: "pull_request", body: pr("synchronize", "main"), status: 202, prs: 1},
		{name: "PR closed", event: "pull_request", body: pr("closed", "main"), status: 200, detail: "ignored: pull request action closed"},
		{name: "PR into another branch", event: "pull_request", body: pr("opened", "dev"), status: 200, detail: "merges into dev"},
		{name: "PR without head", event: "pull_request", body: `{"action":"opened","number":7,"pull_request":{"head":{"sha":"x"}}}`, status: 400, detail: "head.sha is not a commit id"},
		{name: "PR without pull_request", event: "pull_request", body: `{"action":"opened","number":7}`, status: 400, detail: "field pull_request is missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, q := &syncs{}, &queue{}
			h, err := hooks.New(hooks.Options{Secret: []byte(secret), Store: s, PullRequests: q})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, hooks.Path, strings.NewReader(c.body))
			if c.giteaHeaders {
				req.Header.Set("X-Gitea-Event", c.event)
				req.Header.Set("X-Gitea-Signature", sign(c.body))
			} else {
				if c.event != "" {
					req.Header.Set("X-GitHub-Event", c.event)
				}
				if c.header == nil {
					req.Header.Set("X-Hub-Signature-256", "sha256="+sign(c.body))
				}
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var answer struct{ Detail string }
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if rec.Code != c.status || !strings.Contains(answer.Detail, c.detail) {
				t.Errorf("answer %d %q, want %d with %q", rec.Code, answer.Detail, c.status, c.detail)
			}
			if s.n != c.synced || len(q.prs) != c.prs {
				t.Errorf("%d syncs and %d pull requests, want %d and %d", s.n, len(q.prs), c.synced, c.prs)
			}
			if c.prs == 1 && (q.prs[0] != hooks.PullRequest{Number: 7, HeadSHA: head, BaseRef: "main", Action: q.prs[0].Action}) {
				t.Errorf("queued %+v", q.prs[0])
			}
		})
	}
}

func TestMethodAndSize(t *testing.T) {
	h, err := hooks.New(hooks.Options{Secret: []byte(secret), Store: &syncs{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, hooks.Path, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, hooks.Path, strings.NewReader(strings.Repeat(" ", hooks.MaxBody+1))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a huge body: %d", rec.Code)
	}
	if _, err := hooks.New(hooks.Options{Store: &syncs{}}); err == nil {
		t.Error("an empty secret was taken")
	}
}

package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const sha1 = "0123456789abcdef0123456789abcdef01234567"

// fakeGitHub is a minimal GitHub REST API for one repository, o/r: statuses,
// and issue comments with GitHub's pagination.
type fakeGitHub struct {
	t        *testing.T
	mu       sync.Mutex
	comments []comment
	statuses []map[string]string
	pages    []int // page numbers requested, in order
	nextID   int64
	fail     int // when not 0, every request gets this status
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer s3cr3t-token" {
		f.t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, got)
	}
	if got := r.Header.Get("Accept"); got != "application/vnd.github+json" {
		f.t.Errorf("%s %s: Accept %q", r.Method, r.URL.Path, got)
	}
	if f.fail != 0 {
		w.WriteHeader(f.fail)
		fmt.Fprintf(w, `{"message":"Validation Failed for s3cr3t-token","documentation_url":%q}`, strings.Repeat("x", 500))
		return
	}
	var in map[string]string
	if r.Body != nil && r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("%s %s: body: %v", r.Method, r.URL.Path, err)
		}
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/repos/o/r/statuses/"+sha1:
		f.statuses = append(f.statuses, in)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":1}`)
	case r.Method == http.MethodGet && r.URL.Path == "/repos/o/r/issues/7/comments":
		if r.URL.Query().Get("per_page") != "100" {
			f.t.Errorf("per_page %q", r.URL.Query().Get("per_page"))
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		f.pages = append(f.pages, page)
		lo, hi := min((page-1)*100, len(f.comments)), min(page*100, len(f.comments))
		json.NewEncoder(w).Encode(f.comments[lo:hi])
	case r.Method == http.MethodPost && r.URL.Path == "/repos/o/r/issues/7/comments":
		f.nextID++
		c := comment{ID: f.nextID, Body: in["body"]}
		f.comments = append(f.comments, c)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/repos/o/r/issues/comments/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/repos/o/r/issues/comments/"), 10, 64)
		for i := range f.comments {
			if f.comments[i].ID == id {
				f.comments[i].Body = in["body"]
				json.NewEncoder(w).Encode(f.comments[i])
				return
			}
		}
		http.NotFound(w, r)
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func newGitHub(t *testing.T) (*fakeGitHub, *Client) {
	t.Helper()
	f := &fakeGitHub{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Options{Kind: KindGitHub, APIURL: srv.URL + "/", Repo: "o/r", Token: "s3cr3t-token"})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func TestGitHubSetStatus(t *testing.T) {
	f, c := newGitHub(t)
	long := "  " + strings.Repeat("é", 200) + "  "
	if err := c.SetStatus(context.Background(), sha1, Status{State: StateFailure, Description: long,
		TargetURL: "https://mengi.example/runs/1"}); err != nil {
		t.Fatal(err)
	}
	if len(f.statuses) != 1 {
		t.Fatalf("%d statuses", len(f.statuses))
	}
	s := f.statuses[0]
	if s["state"] != "failure" || s["context"] != DefaultContext || s["target_url"] != "https://mengi.example/runs/1" {
		t.Errorf("status %v", s)
	}
	if d := []rune(s["description"]); len(d) != MaxDescription || d[len(d)-1] != '…' || d[0] != 'é' {
		t.Errorf("description %q (%d characters)", s["description"], len(d))
	}
}

func TestSetStatusRejects(t *testing.T) {
	_, c := newGitHub(t)
	for _, tc := range []struct {
		sha string
		s   Status
	}{
		{"abc", Status{State: StateSuccess}},
		{strings.ToUpper(sha1), Status{State: StateSuccess}},
		{sha1, Status{State: "warning"}},
	} {
		if err := c.SetStatus(context.Background(), tc.sha, tc.s); err == nil {
			t.Errorf("SetStatus(%q, %v): no error", tc.sha, tc.s)
		}
	}
}

func TestGitHubUpsertCommentPaginates(t *testing.T) {
	f, c := newGitHub(t)
	const marker = "<!-- mengi/validate -->"
	// 150 other comments first: the marked one is on page 2.
	for i := range 150 {
		f.comments = append(f.comments, comment{ID: int64(i + 1), Body: "lgtm " + strconv.Itoa(i)})
	}
	f.nextID = 150
	ctx := context.Background()
	if err := c.UpsertComment(ctx, 7, marker, "2 files invalid"); err != nil {
		t.Fatal(err)
	}
	if got := f.pages; fmt.Sprint(got) != "[1 2]" {
		t.Errorf("pages %v", got)
	}
	if n := len(f.comments); n != 151 || f.comments[150].Body != marker+"\n2 files invalid" {
		t.Fatalf("%d comments, last %q", n, f.comments[n-1].Body)
	}
	f.pages = nil
	if err := c.UpsertComment(ctx, 7, marker, marker+"\nall files valid"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.comments); n != 151 || f.comments[150].Body != marker+"\nall files valid" || f.comments[150].ID != 151 {
		t.Fatalf("%d comments, last %+v", n, f.comments[n-1])
	}
	// Unchanged: no PATCH (the fake would accept it; count requests by pages).
	f.pages = nil
	if err := c.UpsertComment(ctx, 7, marker, "all files valid"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.pages) != "[1 2]" || len(f.comments) != 151 {
		t.Errorf("pages %v, %d comments", f.pages, len(f.comments))
	}
}

func TestErrorsCarryStatusNotToken(t *testing.T) {
	f, c := newGitHub(t)
	f.fail = http.StatusUnprocessableEntity
	err := c.SetStatus(context.Background(), sha1, Status{State: StateSuccess})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 422 {
		t.Fatalf("error %v (%T)", err, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cr3t-token") || !strings.Contains(msg, "422") || !strings.Contains(msg, "Validation Failed") {
		t.Errorf("error %q", msg)
	}
	if len(ae.Excerpt) > 210 {
		t.Errorf("excerpt of %d bytes", len(ae.Excerpt))
	}
	if err := c.UpsertComment(context.Background(), 7, "<!-- m -->", "x"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("UpsertComment: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{Kind: "gitlab", APIURL: "https://x", Repo: "o/r", Token: "t"},
		{Kind: KindGitea, APIURL: "ftp://x", Repo: "o/r", Token: "t"},
		{Kind: KindGitea, APIURL: "http://u:p@x/api/v1", Repo: "o/r", Token: "t"},
		{Kind: KindGitea, APIURL: "http://x/api/v1", Repo: "o", Token: "t"},
		{Kind: KindGitea, APIURL: "http://x/api/v1", Repo: "o/r/s", Token: "t"},
		{Kind: KindGitea, APIURL: "http://x/api/v1", Repo: "o/r"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

func TestParseCloneURL(t *testing.T) {
	for _, tc := range []struct {
		in, kind string
		want     Endpoint
	}{
		{"https://github.com/o/r.git", "", Endpoint{KindGitHub, "https://api.github.com", "o/r"}},
		{"https://x-access-token:ghs_abc@github.com/o/r", "", Endpoint{KindGitHub, "https://api.github.com", "o/r"}},
		{"git@github.com:o/r.git", "", Endpoint{KindGitHub, "https://api.github.com", "o/r"}},
		{"ssh://git@github.com/o/r.git", "", Endpoint{KindGitHub, "https://api.github.com", "o/r"}},
		{"https://ghe.example.com/o/r.git", KindGitHub, Endpoint{KindGitHub, "https://ghe.example.com/api/v3", "o/r"}},
		{"http://127.0.0.1:3000/forgeadmin/gitops.git", "", Endpoint{KindGitea, "http://127.0.0.1:3000/api/v1", "forgeadmin/gitops"}},
		{"http://forgeadmin:tok@127.0.0.1:3000/forgeadmin/gitops.git/", KindGitea, Endpoint{KindGitea, "http://127.0.0.1:3000/api/v1", "forgeadmin/gitops"}},
		{"https://example.com/git/team/deploy", "", Endpoint{KindGitea, "https://example.com/git/api/v1", "team/deploy"}},
	} {
		got, err := ParseCloneURL(tc.in, tc.kind)
		if err != nil || got != tc.want {
			t.Errorf("ParseCloneURL(%q, %q) = %+v, %v; want %+v", tc.in, tc.kind, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "github.com", "https://github.com/o", "git@gitea.example:o/r.git", "https://h/o/r"[:9],
		"http://tok@h:3000/o"} {
		if ep, err := ParseCloneURL(in, ""); err == nil {
			t.Errorf("ParseCloneURL(%q) = %+v, want an error", in, ep)
		} else if strings.Contains(err.Error(), "tok@") {
			t.Errorf("error shows the token: %v", err)
		}
	}
	if _, err := ParseCloneURL("https://github.com/o/r", "gitlab"); err == nil {
		t.Error("kind gitlab accepted")
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"  ok \n", 140, "ok"},
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abcde…"},
		{"abcd  efg", 6, "abcd…"},
		{"x", 0, ""},
	} {
		if got := Truncate(tc.in, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

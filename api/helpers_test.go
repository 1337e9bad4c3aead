package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// The tests drive the API over real HTTP (httptest.NewServer) on a real
// bare repository in t.TempDir(), and check what landed in Git with the git
// CLI, never through gitstore's own reading code.

// committerIdent signs every commit the store makes.
const committerIdent = "Mengi GitOps <gitops@mengi.local>"

// responseFields are the keys of DeploymentResponse: Mengi's list plus the
// four fields the contract adds (shared/notes/mengi-api.md, "DeploymentResponse").
var responseFields = []string{
	"id", "user_id", "cluster_id", "name", "app_type", "status",
	"config", "values_yaml", "git_path", "endpoint_url", "error_message",
	"cpu_request", "memory_request_mb", "replicas", "container_port", "storage_size_gb",
	"deployment_type", "helm_repo_url", "helm_chart_name", "helm_chart_version",
	"custom_values_yaml", "image_update_strategy", "image_update_constraint",
	"image_allow_tags", "image_ignore_tags", "is_adopted", "source_namespace",
	"created_at", "updated_at", "provider", "region", "cluster_status", "cluster_error",
	"docker_image", "environment_variables", "volumes", "run_as_uid",
}

// clock is the API's time source; tests move it explicitly, so timestamps
// in responses and files are known exactly.
type clock struct {
	mu sync.Mutex
	t  time.Time
	// hook, when set, is called on every reading, outside the lock: the
	// API reads the clock right before it queues a write.
	hook func()
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	now, hook := c.t, c.hook
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return now
}

// setHook installs (or, with nil, removes) the clock's hook.
func (c *clock) setHook(h func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = h
}

// Advance moves the clock on and returns the new time.
func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// account is a user with an API key.
type account struct {
	key  string
	user *schema.User
}

// env is one API server on its own repository, with two users and three
// clusters: prod and staging open to everyone, private only to bob.
type env struct {
	dir    string
	store  *gitstore.Store
	reg    *registry.Registry
	srv    *httptest.Server
	client *http.Client
	clock  *clock

	alice, bob account
	prod       *schema.Cluster
	staging    *schema.Cluster
	private    *schema.Cluster

	// setupCommits is the number of commits made by newEnv.
	setupCommits int
	// storeNow, when set, is the store's commit clock. The committer
	// goroutine reads it once per batch, before making the batch's commits.
	storeNow func() time.Time
	// errors collects what the API and the store log at level ERROR: a
	// panic, a 500. Any of it fails the test.
	errors *errorLog
}

// errorLog is a concurrency-safe buffer of ERROR log lines.
type errorLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *errorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *errorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *errorLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelError}))
}

// start is the API clock's time until a test advances it.
var start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a commit clock for the store.
func newEnvWith(t *testing.T, storeNow func() time.Time) *env {
	t.Helper()
	return newEnvAt(t, t.TempDir(), storeNow)
}

// newEnvAt is newEnvWith on the repository dir (its registry beside it).
func newEnvAt(t *testing.T, dir string, storeNow func() time.Time) *env {
	t.Helper()
	e := &env{dir: dir, clock: &clock{t: start}, storeNow: storeNow, errors: &errorLog{}}
	// Cleanups run last-registered first: the server and the store stop
	// before the repository is checked.
	t.Cleanup(func() {
		e.fsck(t)
		if logged := e.errors.String(); logged != "" {
			t.Errorf("the API or the store logged errors (a 500 or worse):\n%s", logged)
		}
	})
	e.open(t)
	ctx := context.Background()
	var err error
	if e.alice.key, e.alice.user, err = e.reg.AddKey(ctx, "Alice Example", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.bob.key, e.bob.user, err = e.reg.AddKey(ctx, "Bob Builder", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.prod, err = e.reg.AddCluster(ctx, registry.ClusterSpec{Name: "prod", Provider: "hetzner", Region: "fsn1", Domain: "apps.example.com"}); err != nil {
		t.Fatal(err)
	}
	if e.staging, err = e.reg.AddCluster(ctx, registry.ClusterSpec{Name: "staging"}); err != nil {
		t.Fatal(err)
	}
	if e.private, err = e.reg.AddCluster(ctx, registry.ClusterSpec{Name: "private", Users: []string{"bob@example.com"}}); err != nil {
		t.Fatal(err)
	}
	e.setupCommits = e.commitCount(t)
	if e.setupCommits != 0 {
		t.Fatalf("setup made %d commits in the deployments repository, want none (users and clusters are the registry's)", e.setupCommits)
	}
	if n := strings.Count(e.gitIn(t, e.reg.Dir(), "log", "--format=%s", "main"), "\n"); n != 5 {
		t.Fatalf("setup made %d commits in the registry, want 5 (2 users, 3 clusters)", n)
	}
	return e
}

// open starts a store and a server on e.dir.
func (e *env) open(t *testing.T) {
	t.Helper()
	store, err := gitstore.Open(e.dir, gitstore.Options{Now: e.storeNow, Logger: e.errors.logger(), Holds: gitstore.HoldsDeployments})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(registry.DefaultDir(e.dir), gitstore.Options{Logger: e.errors.logger()})
	if err != nil {
		t.Fatal(err)
	}
	e.store, e.reg = store, reg
	e.srv = httptest.NewServer(api.New(store, reg, api.Options{Now: e.clock.Now, Logger: e.errors.logger()}))
	e.client = e.srv.Client()
	srv := e.srv
	t.Cleanup(func() {
		srv.Close()
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		if err := reg.Close(); err != nil {
			t.Errorf("close registry: %v", err)
		}
	})
}

// reopen stops the server and the store and starts new ones on the same
// repository, as a restart of `mengi serve` does.
func (e *env) reopen(t *testing.T) {
	t.Helper()
	e.srv.Close()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
}

// ---- git CLI ----

func (e *env) git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.gitErr(args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// gitIn is git in another repository (the registry).
func (e *env) gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitDir(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) gitErr(args ...string) (string, error) { return gitDir(e.dir, args...) }

func gitDir(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

// fsck fails the test unless `git fsck --strict` finds nothing at all.
func (e *env) fsck(t *testing.T) {
	t.Helper()
	out, err := e.gitErr("fsck", "--strict", "--no-progress", "--no-dangling")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("git fsck --strict: %v\n%s", err, out)
	}
}

func (e *env) commitCount(t *testing.T) int {
	t.Helper()
	if _, err := e.gitErr("rev-parse", "--verify", "-q", "main"); err != nil {
		return 0 // no commit yet
	}
	n, err := strconv.Atoi(strings.TrimSpace(e.git(t, "rev-list", "--count", "main")))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// assertCommits checks that the branch has exactly want commits.
func (e *env) assertCommits(t *testing.T, want int) {
	t.Helper()
	if got := e.commitCount(t); got != want {
		t.Fatalf("main has %d commits, want %d\n%s", got, want, e.git(t, "log", "--format=%h %s", "main"))
	}
}

// gitCommit is one commit as the git CLI shows it.
type gitCommit struct {
	SHA, Parents                    string
	AuthorName, AuthorEmail, Author string
	Committer                       string
	AuthorTime                      time.Time
	Subject, Body, Raw              string
	DeploymentID, RequestID         string
	Files                           []string // paths changed, sorted
}

// commit reads commit rev with the git CLI.
func (e *env) commit(t *testing.T, rev string) gitCommit {
	t.Helper()
	const sep = "\x1f"
	format := strings.Join([]string{"%H", "%P", "%an", "%ae", "%cn <%ce>", "%aI", "%s", "%b",
		"%(trailers:key=Deployment-Id,valueonly,separator=%x2C)", "%(trailers:key=Request-Id,valueonly,separator=%x2C)", "%B"}, "%x1f")
	out := e.git(t, "log", "-1", "--format="+format, rev)
	f := strings.Split(out, sep)
	if len(f) != 11 {
		t.Fatalf("git log %s: unexpected output %q", rev, out)
	}
	when, err := time.Parse(time.RFC3339, f[5])
	if err != nil {
		t.Fatal(err)
	}
	c := gitCommit{SHA: f[0], Parents: f[1], AuthorName: f[2], AuthorEmail: f[3], Committer: f[4], AuthorTime: when,
		Subject: f[6], Body: strings.TrimSpace(f[7]), DeploymentID: strings.TrimSpace(f[8]), RequestID: strings.TrimSpace(f[9]), Raw: strings.TrimRight(f[10], "\n")}
	c.Author = c.AuthorName + " <" + c.AuthorEmail + ">"
	// %b ends with the trailer block; Body is what comes before it.
	if i := strings.LastIndex(c.Body, "\n\nDeployment-Id: "); i >= 0 {
		c.Body = c.Body[:i]
	} else if strings.HasPrefix(c.Body, "Deployment-Id: ") {
		c.Body = ""
	}
	files := strings.Fields(e.git(t, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", c.SHA))
	slices.Sort(files)
	c.Files = files
	return c
}

// wantCommit is what a deployment commit made by the API must look like.
type wantCommit struct {
	user         *schema.User
	subject      string
	deploymentID string
	requestID    string   // "" skips the check
	bodyLines    []string // lines the body must contain
	files        []string // paths changed, any order
}

// checkCommit checks the commit at rev against w.
func (e *env) checkCommit(t *testing.T, rev string, w wantCommit) gitCommit {
	t.Helper()
	c := e.commit(t, rev)
	if want := w.user.Name + " <" + w.user.Email + ">"; c.Author != want {
		t.Errorf("commit %s: author %q, want %q", rev, c.Author, want)
	}
	if c.Committer != committerIdent {
		t.Errorf("commit %s: committer %q, want %q", rev, c.Committer, committerIdent)
	}
	if c.Subject != w.subject {
		t.Errorf("commit %s: subject %q, want %q", rev, c.Subject, w.subject)
	}
	if c.DeploymentID != w.deploymentID {
		t.Errorf("commit %s: Deployment-Id trailer %q, want %q\n%s", rev, c.DeploymentID, w.deploymentID, c.Raw)
	}
	if w.requestID != "" && c.RequestID != w.requestID {
		t.Errorf("commit %s: Request-Id trailer %q, want %q\n%s", rev, c.RequestID, w.requestID, c.Raw)
	}
	if c.RequestID == "" {
		t.Errorf("commit %s: no Request-Id trailer\n%s", rev, c.Raw)
	}
	body := strings.Split(c.Body, "\n")
	for _, l := range w.bodyLines {
		if !slices.Contains(body, l) {
			t.Errorf("commit %s: body has no line %q:\n%s", rev, l, c.Body)
		}
	}
	if w.files != nil {
		want := slices.Clone(w.files)
		slices.Sort(want)
		if !slices.Equal(c.Files, want) {
			t.Errorf("commit %s changed %q, want %q", rev, c.Files, want)
		}
	}
	return c
}

// file returns the content of path at the head of main, and whether it is
// there.
func (e *env) file(t *testing.T, path string) (string, bool) {
	t.Helper()
	if _, err := e.gitErr("cat-file", "-e", "main:"+path); err != nil {
		return "", false
	}
	return e.git(t, "show", "main:"+path), true
}

// checkFile checks that the file at path is exactly schema.EncodeFile(want)
// and that schema.ParseFile reads it back as want.
func (e *env) checkFile(t *testing.T, path string, want *schema.Deployment) {
	t.Helper()
	got, ok := e.file(t, path)
	if !ok {
		t.Fatalf("%s is not in main:\n%s", path, e.git(t, "ls-tree", "-r", "--name-only", "main"))
	}
	enc, err := schema.EncodeFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(enc) {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, enc)
	}
	parsed, errs := schema.ParseFile([]byte(got))
	if errs != nil {
		t.Fatalf("ParseFile(%s): %v", path, errs)
	}
	if again, _ := schema.EncodeFile(parsed); string(again) != got {
		t.Errorf("%s does not survive ParseFile+EncodeFile:\n%s", path, again)
	}
	if !reflect.DeepEqual(jsonValue(t, parsed), jsonValue(t, want)) {
		t.Errorf("ParseFile(%s) = %s\nwant %s", path, mustJSON(t, parsed), mustJSON(t, want))
	}
}

// ---- HTTP ----

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// req is one request; zero fields take defaults (JSON content type when
// there is a body).
type req struct {
	method, path string
	key          string // bearer key; "" sends no Authorization header
	auth         string // raw Authorization header, instead of key
	body         any    // string and []byte are sent as they are, anything else as JSON
	contentType  *string
	requestID    string
}

func (e *env) do(t *testing.T, r req) *response {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		switch b := r.body.(type) {
		case string:
			body = strings.NewReader(b)
		case []byte:
			body = bytes.NewReader(b)
		default:
			body = bytes.NewReader(mustJSON(t, b))
		}
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.contentType != nil:
		if *r.contentType != "" {
			hr.Header.Set("Content-Type", *r.contentType)
		}
	case r.body != nil:
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.auth != "" {
		hr.Header.Set("Authorization", r.auth)
	} else if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.requestID != "" {
		hr.Header.Set("X-Request-Id", r.requestID)
	}
	res, err := e.client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

// expect fails the test unless the status is want; it returns r.
func (r *response) expect(t *testing.T, want int) *response {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	if ct := r.header.Get("Content-Type"); want == http.StatusNoContent && (ct != "" || len(r.body) != 0) {
		t.Errorf("204 with Content-Type %q and a body of %d bytes", ct, len(r.body))
	} else if want != http.StatusNoContent && ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return r
}

// object decodes the body as one JSON object (numbers as float64).
func (r *response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// list decodes the body as a JSON array of objects.
func (r *response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil || l == nil {
		t.Fatalf("body is not a JSON array of objects: %v: %s", err, r.body)
	}
	return l
}

// detail returns the string detail of an error body.
func (r *response) detail(t *testing.T) string {
	t.Helper()
	m := r.object(t)
	if len(m) != 1 {
		t.Errorf("error body has keys other than detail: %s", r.body)
	}
	s, ok := m["detail"].(string)
	if !ok {
		t.Fatalf("detail is not a string: %s", r.body)
	}
	return s
}

// fieldError is one entry of a 422's detail.
type fieldError struct {
	Type  string         `json:"type"`
	Loc   []any          `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx"`
}

// validationErrors decodes a 422 body.
func (r *response) validationErrors(t *testing.T) []fieldError {
	t.Helper()
	r.expect(t, http.StatusUnprocessableEntity)
	var body struct {
		Detail []fieldError `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	dec.UseNumber() // an input such as 1e400 is echoed as it was sent
	if err := dec.Decode(&body); err != nil || len(body.Detail) == 0 {
		t.Fatalf("not a validation error body: %v: %s", err, r.body)
	}
	for _, e := range body.Detail {
		if e.Type == "" || e.Msg == "" || len(e.Loc) == 0 {
			t.Errorf("incomplete entry %+v", e)
		}
	}
	return body.Detail
}

// L builds a loc; JSON numbers decode as float64, so ints are converted.
func L(parts ...any) []any {
	out := make([]any, len(parts))
	for i, p := range parts {
		if n, ok := p.(int); ok {
			out[i] = float64(n)
		} else {
			out[i] = p
		}
	}
	return out
}

// ---- API shortcuts ----

// create posts body as a and returns the 201's body.
func (e *env) create(t *testing.T, a account, body any) map[string]any {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/deployments", key: a.key, body: body}).expect(t, http.StatusCreated).object(t)
}

// dockerBody is a minimal valid docker deployment on cluster c.
func dockerBody(c *schema.Cluster, name string, kv ...any) map[string]any {
	m := map[string]any{"cluster_id": c.ID, "name": name, "docker_image": "nginx:1.27"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func (e *env) get(t *testing.T, a account, id string) *response {
	t.Helper()
	return e.do(t, req{method: "GET", path: "/deployments/" + id, key: a.key})
}

func (e *env) patch(t *testing.T, a account, id string, body any) *response {
	t.Helper()
	return e.do(t, req{method: "PATCH", path: "/deployments/" + id, key: a.key, body: body})
}

func (e *env) delete(t *testing.T, a account, id string) *response {
	t.Helper()
	return e.do(t, req{method: "DELETE", path: "/deployments/" + id, key: a.key})
}

// ---- values ----

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonValue is v as generic JSON, for comparisons.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(mustJSON(t, v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// deploymentPath is where the contract puts a deployment's file.
func deploymentPath(c *schema.Cluster, name string) string {
	return "clusters/" + c.ID + "/" + name + ".yaml"
}

// checkFields compares selected response fields with want (JSON values).
func checkFields(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w := jsonValue(t, want[k])
		g, ok := got[k]
		if !ok {
			t.Errorf("response has no %q", k)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %s, want %s", k, mustJSON(t, g), mustJSON(t, w))
		}
	}
}

// checkKeys fails unless the response has exactly the contract's fields.
func checkKeys(t *testing.T, got map[string]any) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Clone(responseFields)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("response keys\n%q\nwant\n%q", keys, want)
	}
}

func rfc3339(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

// noCommit runs fn and fails if it made a commit.
func (e *env) noCommit(t *testing.T, fn func()) {
	t.Helper()
	before := e.commitCount(t)
	fn()
	if after := e.commitCount(t); after != before {
		t.Errorf("%d commits were made, want none:\n%s", after-before, e.git(t, "log", "-"+strconv.Itoa(after-before), "--format=%h %s", "main"))
	}
}

// fmtLoc renders a loc for comparisons and messages: [body volumes 0 path].
func fmtLoc(l []any) string { return fmt.Sprintf("%v", l) }

// addUser registers a new user with a key (one commit).
func addUser(t *testing.T, e *env, email string) (account, *schema.User) {
	t.Helper()
	key, u, err := e.reg.AddKey(context.Background(), "User "+email, email)
	if err != nil {
		t.Fatal(err)
	}
	return account{key: key, user: u}, u
}

// minimalDeployment is the file of dockerBody(c, name) as created at
// created by user.
func minimalDeployment(id string, user *schema.User, c *schema.Cluster, name string, created time.Time) *schema.Deployment {
	return &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: id, UserID: user.ID, CreatedAt: created, UpdatedAt: created},
		Spec: schema.Spec{ClusterID: c.ID, Name: name, AppType: schema.AppHelm,
			DeploymentType: schema.TypeDocker, DockerImage: ptr("nginx:1.27")},
	}
}

// list returns a's deployments (up to 1000).
func (e *env) list(t *testing.T, a account) []map[string]any {
	t.Helper()
	return e.do(t, req{method: "GET", path: "/deployments?limit=1000", key: a.key}).expect(t, http.StatusOK).list(t)
}

// jsonDecoder decodes from r while copying what it reads into sb.
func jsonDecoder(r io.Reader, sb *strings.Builder) *json.Decoder {
	return json.NewDecoder(io.TeeReader(r, sb))
}

// commitExternally writes content at path on main as someone else would
// (the agent, or a `git push` of a merged pull request), with the git CLI
// alone, and returns the new commit.
func (e *env) commitExternally(t *testing.T, path string, content []byte, message string) string {
	t.Helper()
	return e.commitFilesExternally(t, map[string][]byte{path: content}, message)
}

// commitFilesExternally is commitExternally of several files; a nil
// content removes the file.
func (e *env) commitFilesExternally(t *testing.T, files map[string][]byte, message string) string {
	t.Helper()
	index := t.TempDir() + "/index"
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", e.dir, "-c", "user.name=Mengi agent", "-c", "user.email=agent@mengi.local"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_INDEX_FILE="+index)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	parent, _ := e.gitErr("rev-parse", "-q", "--verify", "main")
	parent = strings.TrimSpace(parent)
	if parent != "" {
		run(nil, "read-tree", "main")
	}
	for path, content := range files {
		if content == nil {
			run([]byte("0 "+strings.Repeat("0", 40)+"\t"+path+"\n"), "update-index", "--index-info")
			continue
		}
		blob := run(content, "hash-object", "-w", "--stdin")
		run(nil, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+path)
	}
	tree := run(nil, "write-tree")
	args := []string{"commit-tree", tree}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	sha := run([]byte(message), args...)
	run(nil, "update-ref", "refs/heads/main", sha, parent)
	return sha
}

// waitHead waits until the store has taken in commit sha (a push it
// learns of from the ref's change).
func (e *env) waitHead(t *testing.T, sha string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.store.Head().String() != sha {
		if time.Now().After(deadline) {
			t.Fatalf("the store did not take in %s within 10 s (head %s)", sha, e.store.Head())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

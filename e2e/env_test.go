package e2e

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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/agent"
	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/fetchguard"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// env is the whole system on a fresh repository and the shared cluster.
type env struct {
	t       *testing.T
	dir     string // the bare repository
	store   *gitstore.Store
	reg     *registry.Registry
	api     *httptest.Server
	key     string
	cluster *schema.Cluster
	kube    kubernetes.Interface
	log     *slog.Logger
	logs    *logRecorder
	charts  string // the agent's chart cache
	// agentStore, when set, is the agent's own store (a second mirror of
	// a remote); else the agent shares store with the API.
	agentStore *gitstore.Store

	mu        sync.Mutex
	agent     *agent.Agent
	stopAgent func() // stops the running agent; nil when none runs
	stop      func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	logs := &logRecorder{t: t}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	repos, err := registry.OpenRepos(ctx, dir+"/repo", "", log)
	if err != nil {
		t.Fatal(err)
	}
	store, reg := repos.Deployments, repos.Registry
	key, _, err := reg.AddKey(ctx, "Ada Lovelace", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Each test gets its own cluster record (same real cluster), so
	// deployment names never clash between tests.
	cl, err := reg.AddCluster(ctx, registry.ClusterSpec{Name: "local", Kubeconfig: clustertest.Kubeconfig(t), Domain: "apps.test", Provider: "local"})
	if err != nil {
		t.Fatal(err)
	}
	// The API logs only problems: one line per request would drown the
	// agent's lines in the polling.
	apiLog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := httptest.NewServer(api.New(store, reg, api.Options{Logger: apiLog}))
	kube, err := kubernetes.NewForConfig(clustertest.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir + "/repo", store: store, reg: reg, api: srv, key: key, cluster: cl, kube: kube,
		log: log, logs: logs, charts: dir + "/charts"}
	e.startAgent()
	e.stop = func() {
		srv.Close()
		e.stopTheAgent()
		repos.Close()
	}
	t.Cleanup(e.stop)
	return e
}

// startAgent starts an agent on the env's store, as `mengi up` does.
func (e *env) startAgent() *agent.Agent {
	e.t.Helper()
	// The test's chart repositories are on loopback, which the fetch guard
	// refuses unless allowed (as `mengi up --allow-fetch 127.0.0.1/32`).
	renderer, err := render.New(render.Options{CacheDir: e.charts, Logger: e.log,
		Fetch: fetchguard.Options{Allow: []string{"127.0.0.1/32"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	log := e.log
	a, err := agent.New(agent.Options{
		Store: e.agentsStore(), Registry: e.reg, Renderer: renderer, Logger: log, HealthTimeout: 45 * time.Second, DriftInterval: time.Second,
		Connect: func(c *schema.Cluster) (agent.Conn, error) { return cluster.Connect(c, cluster.Options{Logger: log}) },
	})
	if err != nil {
		e.t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.Run(actx); err != nil {
			e.t.Errorf("agent: %v", err)
		}
	}()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopAgent != nil {
		e.t.Fatal("startAgent: an agent is running already")
	}
	e.agent = a
	e.stopAgent = func() {
		cancel()
		wg.Wait()
	}
	return a
}

func (e *env) agentsStore() *gitstore.Store {
	if e.agentStore != nil {
		return e.agentStore
	}
	return e.store
}

// stopTheAgent stops the running agent (Run returns) and waits for it.
func (e *env) stopTheAgent() {
	e.mu.Lock()
	stop := e.stopAgent
	e.stopAgent = nil
	e.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// logRecorder sends log lines to the test's log and keeps them, so tests
// can count what the agent did.
type logRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (w *logRecorder) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	w.mu.Lock()
	w.lines = append(w.lines, line)
	w.mu.Unlock()
	w.t.Log(line)
	return len(p), nil
}

// count returns how many lines logged so far contain every one of parts.
func (w *logRecorder) count(parts ...string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
next:
	for _, l := range w.lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// call makes an API request and decodes the JSON answer.
func (e *env) call(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.api.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// create POSTs a docker web_app called name on the env's cluster (fields
// override the defaults) and returns its id.
func (e *env) create(name string, fields map[string]any) string {
	e.t.Helper()
	body := map[string]any{
		"cluster_id": e.cluster.ID, "name": name, "app_type": "web_app", "docker_image": "nginx:1.27",
		"replicas": 1, "container_port": 8080, "cpu_request": 0.1, "memory_request_mb": 64,
	}
	for k, v := range fields {
		body[k] = v
	}
	code, d := e.call(http.MethodPost, "/deployments", body)
	if code != http.StatusCreated {
		e.t.Fatalf("POST %s: %d %v", name, code, d)
	}
	return d["id"].(string)
}

// waitFor polls GET /deployments/{id} until cond holds.
func (e *env) waitFor(id string, timeout time.Duration, what string, cond func(d map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		code, d := e.call(http.MethodGet, "/deployments/"+id, nil)
		if code == http.StatusOK && cond(d) {
			return d
		}
		last = d
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("deployment %s: %s not reached in %v; last: %v", id, what, timeout, last)
	return nil
}

func status(want string) func(map[string]any) bool {
	return func(d map[string]any) bool { return d["status"] == want }
}

// eventually polls check every 100 ms until it reports true, and fails the
// test with what and check's last note when timeout passes first.
func eventually(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, note := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %v; last: %s", what, timeout, note)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// record returns the deployment's record in the store (the file at head).
func (e *env) record(id string) *gitstore.Record {
	var r *gitstore.Record
	e.store.Read(func(v *gitstore.View) { r = v.Deployment(id) })
	return r
}

// path is the file of deployment name on the env's cluster.
func (e *env) path(name string) string { return gitstore.DeploymentPath(e.cluster.ID, name) }

// settled reports whether the agent has taken in the head (the synced ref
// is there) and has nothing queued or running.
func (e *env) settled() (bool, string) {
	synced, err := e.store.Ref(agent.SyncedRef)
	if err != nil {
		return false, err.Error()
	}
	head := e.store.Head()
	e.mu.Lock()
	a := e.agent
	e.mu.Unlock()
	// The agent queues the work for a commit before it moves the synced
	// ref there, so idle after that means the work is done; a commit made
	// meanwhile shows as a new head.
	idle := a.Idle()
	return synced == head && idle && e.store.Head() == head,
		fmt.Sprintf("synced %s, head %s, idle %v", synced, head, idle)
}

// waitSettled waits until the agent has taken in the head and finished
// everything it queued for it.
func (e *env) waitSettled(timeout time.Duration) {
	e.t.Helper()
	eventually(e.t, timeout, "agent settled", e.settled)
}

// git runs the git CLI on the repository.
func (e *env) git(args ...string) string {
	e.t.Helper()
	return gitIn(e.t, e.dir, args...)
}

// gitIn runs the git CLI in dir, isolated from the machine's git config.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitCmd(dir, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	return cmd
}

// commitCount is the number of commits on the branch.
func (e *env) commitCount() int {
	e.t.Helper()
	n, err := strconv.Atoi(e.git("rev-list", "--count", "main"))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) ns(name string) string { return render.Namespace(name) }

// releaseSecrets lists Helm's release records of release name (one per
// revision) in its namespace.
func (e *env) releaseSecrets(name string) []corev1.Secret {
	e.t.Helper()
	return helmRecords(e.t, e.kube, name)
}

func helmRecords(t *testing.T, kube kubernetes.Interface, name string) []corev1.Secret {
	t.Helper()
	list, err := kube.CoreV1().Secrets(render.Namespace(name)).List(context.Background(),
		metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		t.Fatalf("list Helm records of %s: %v", name, err)
	}
	return list.Items
}

// revisions describes Helm's records of a release as "1:superseded 2:deployed".
func revisions(secrets []corev1.Secret) string {
	byVersion := map[int]string{}
	last := 0
	for _, s := range secrets {
		v, _ := strconv.Atoi(s.Labels["version"])
		byVersion[v] = s.Labels["status"]
		last = max(last, v)
	}
	var parts []string
	for v := 1; v <= last; v++ {
		if st, ok := byVersion[v]; ok {
			parts = append(parts, fmt.Sprintf("%d:%s", v, st))
		}
	}
	return strings.Join(parts, " ")
}

// deploymentReady reports whether Deployment name in namespace ns has
// exactly want replicas, all updated and available.
func (e *env) deploymentReady(ns, name string, want int32) (bool, string) {
	d, err := e.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	note := fmt.Sprintf("spec.replicas %d, available %d, updated %d", *d.Spec.Replicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	return *d.Spec.Replicas == want && d.Status.AvailableReplicas == want && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.ObservedGeneration == d.Generation, note
}

// withoutStatus returns a deployment file without its top-level status
// block (the `status:` line and the indented or blank lines under it),
// byte for byte otherwise. It is written independently of
// schema.SetStatus, which it checks.
func withoutStatus(file string) string {
	lines := strings.SplitAfter(file, "\n")
	var out strings.Builder
	in := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "status:"):
			in = true
			continue
		case in && (strings.TrimSpace(l) == "" || l[0] == ' '):
			continue
		}
		in = false
		out.WriteString(l)
	}
	return out.String()
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/agent"
	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// env is the whole system on a fresh repository and the shared cluster.
type env struct {
	t       *testing.T
	dir     string
	store   *gitstore.Store
	api     *httptest.Server
	key     string
	cluster *schema.Cluster
	kube    kubernetes.Interface
	agent   *agent.Agent
	stop    func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store, err := gitstore.Open(dir+"/repo", gitstore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, _, err := registry.AddKey(ctx, store, "Ada Lovelace", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Each test gets its own cluster record (same real cluster), so
	// deployment names never clash between tests.
	cl, err := registry.AddCluster(ctx, store, registry.ClusterSpec{Name: "local", Kubeconfig: clustertest.Kubeconfig(t), Domain: "apps.test", Provider: "local"})
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := render.New(render.Options{CacheDir: dir + "/charts", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{
		Store: store, Renderer: renderer, Logger: log, HealthTimeout: 45 * time.Second, DriftInterval: time.Second,
		Connect: func(c *schema.Cluster) (agent.Conn, error) { return cluster.Connect(c, cluster.Options{Logger: log}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.Run(actx); err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	srv := httptest.NewServer(api.New(store, api.Options{Logger: log}))
	kube, err := kubernetes.NewForConfig(clustertest.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir + "/repo", store: store, api: srv, key: key, cluster: cl, kube: kube, agent: a}
	e.stop = func() {
		srv.Close()
		cancel()
		wg.Wait()
		store.Close()
	}
	t.Cleanup(e.stop)
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
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

// git runs the git CLI on the repository.
func (e *env) git(args ...string) string {
	e.t.Helper()
	out, err := exec.Command("git", append([]string{"-C", e.dir}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (e *env) ns(name string) string { return render.Namespace(name) }

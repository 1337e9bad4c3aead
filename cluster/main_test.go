package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/schema"
)

func TestMain(m *testing.M) {
	// The package needs no Helm home (no repositories, no registry); point
	// it at a throwaway folder anyway, so nothing can land in $HOME.
	home, err := os.MkdirTemp("", "cluster-test-helm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		os.Setenv(v, filepath.Join(home, v))
	}
	code := clustertest.RunTests(m)
	os.RemoveAll(home)
	os.Exit(code)
}

// connect returns a Conn to the test cluster that logs to t.
func connect(t *testing.T) *cluster.Conn {
	t.Helper()
	c, err := cluster.Connect(&schema.Cluster{Name: "test", Kubeconfig: clustertest.Kubeconfig(t)},
		cluster.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

// testLogger logs to t until the test ends (Info, or Debug with
// CLUSTER_TEST_DEBUG=1, which shows Helm's lines).
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("CLUSTER_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// namespaceName returns a fresh namespace name for the test; the namespace
// is deleted (without waiting) when the test ends, if it still exists.
func namespaceName(t *testing.T, c *cluster.Conn) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	prefix := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	prefix = strings.NewReplacer("/", "-", "_", "-").Replace(prefix)
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	ns := strings.Trim(prefix, "-") + "-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.Clientset().CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("cleanup: delete namespace %s: %v", ns, err)
		}
	})
	return ns
}

// createNamespace makes an unmanaged namespace.
func createNamespace(t *testing.T, c *cluster.Conn, ns string) {
	t.Helper()
	_, err := c.Clientset().CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
}

// loadChart loads testdata/app afresh.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(filepath.Join("testdata", "app"))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// testContext returns a context that ends with the test, or after limit.
func testContext(t *testing.T, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx
}

// Package clustertest shares one local control plane (see package
// devcluster) between the tests of a test binary:
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.RunTests(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := clustertest.Cluster(t)
//		cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
//		...
//	}
//
// The cluster starts on the first call to Cluster, so a test binary whose
// selected tests do not need it does not pay for it; every package gets its
// own cluster on its own ports, so `go test ./...` may run them in parallel.
//
// Tests that only need some cluster, not this package's processes, should
// use Kubeconfig or RESTConfig: with $MENGI_TEST_KUBECONFIG set they run
// against that cluster (a real one, for example) and start nothing.
// A test that needs the cluster fails, never skips, when it cannot start:
// the binaries missing, a component crashing or a readiness limit passed.
// The component logs are kept when a test failed, and their folder is
// printed.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mengi-cloud/gitops/devcluster"
)

// EnvKubeconfig names the kubeconfig of an existing cluster that Kubeconfig
// and RESTConfig return instead of starting the local one.
const EnvKubeconfig = "MENGI_TEST_KUBECONFIG"

// shared is the one cluster of this test binary. It is the only package
// state: it must outlive every test and be reachable from TestMain.
var shared struct {
	once    sync.Once
	mu      sync.Mutex
	cluster *devcluster.Cluster
	err     error
	failed  bool // a test that used the cluster failed
	running bool // inside RunTests
}

// RunTests runs the tests of m and stops the shared cluster if a test started
// it. It keeps the cluster's logs when a test failed. Call it from TestMain
// and pass its result to os.Exit.
func RunTests(m *testing.M) int {
	shared.mu.Lock()
	shared.running = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	c, failed := shared.cluster, shared.failed || code != 0
	shared.mu.Unlock()
	if c != nil {
		if failed {
			c.KeepLogs()
		}
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "clustertest:", err)
			if code == 0 {
				code = 1
			}
		}
		if failed {
			fmt.Fprintln(os.Stderr, "clustertest: control-plane logs kept in", c.LogDir())
		}
	}
	return code
}

// Cluster returns the shared cluster, starting it on first use. It fails t
// (never skips) when the cluster cannot start, and when the test binary has
// no TestMain calling RunTests, which would leave the cluster running.
func Cluster(t testing.TB) *devcluster.Cluster {
	t.Helper()
	shared.mu.Lock()
	running := shared.running
	shared.mu.Unlock()
	if !running {
		t.Fatal("clustertest: call clustertest.RunTests(m) from TestMain to use the shared cluster")
	}
	shared.once.Do(func() {
		c, err := devcluster.Start(context.Background(), devcluster.Options{
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
		shared.mu.Lock()
		shared.cluster, shared.err = c, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	c, err := shared.cluster, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("clustertest: the local control plane did not start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			shared.mu.Lock()
			shared.failed = true
			shared.mu.Unlock()
		}
	})
	return c
}

// Kubeconfig returns the kubeconfig file tests should use:
// $MENGI_TEST_KUBECONFIG when set, else the shared local cluster's.
func Kubeconfig(t testing.TB) string {
	t.Helper()
	if kc := os.Getenv(EnvKubeconfig); kc != "" {
		return kc
	}
	return Cluster(t).KubeconfigPath()
}

// RESTConfig returns a client configuration for Kubeconfig(t).
func RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	if kc := os.Getenv(EnvKubeconfig); kc != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kc)
		if err != nil {
			t.Fatalf("clustertest: %s=%s: %v", EnvKubeconfig, kc, err)
		}
		return cfg
	}
	return Cluster(t).RESTConfig()
}

package devcluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/devcluster"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

// envSupervisor makes the test binary a cluster supervisor instead of running
// tests (see startSupervisor in restart_test.go).
const envSupervisor = "DEVCLUSTER_TEST_SUPERVISOR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envSupervisor); dir != "" {
		os.Exit(supervise(dir))
	}
	os.Exit(clustertest.RunTests(m))
}

// supervise runs a one-node cluster in dir until SIGINT or SIGTERM. The
// signals stay caught until the process exits: the cluster raises the
// signal that stopped it once more when it is down, which would end the
// process with that signal (not the clean exit the test expects) once no
// handler wants it.
func supervise(dir string) int {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c, err := devcluster.Start(ctx, devcluster.Options{StateDir: dir, Nodes: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testLogger sends the cluster's progress to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newNamespace creates a namespace named after the test and deletes it at
// the end, so tests sharing the cluster do not see each other's objects.
func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: strings.ToLower(t.Name()) + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

package devcluster_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/devcluster"
)

// TestStartStopStart starts a cluster on a persistent state folder, stops
// it, starts it again and stops it again. After each stop no component
// process and no port may be left, and the second start must see the objects
// of the first.
func TestStartStopStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		c, err := devcluster.Start(ctx, devcluster.Options{StateDir: dir, Nodes: 1, Logger: testLogger(t)})
		cancel()
		if err != nil {
			t.Fatalf("round %d: start: %v", round, err)
		}
		procs, ports := c.Processes(), c.Ports()
		if len(procs) != len(devcluster.Binaries()) {
			t.Errorf("round %d: %d processes %v; want one per binary", round, len(procs), procs)
		}
		cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "round-1"}}
		_, err = cs.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{})
		if (round == 1 && err != nil) || (round == 2 && err == nil) {
			t.Errorf("round %d: create ConfigMap round-1: %v (the second start must find it)", round, err)
		}
		if st, err := devcluster.Inspect(dir); err != nil || !st.Alive || st.State != "running" || st.PID != os.Getpid() {
			t.Errorf("round %d: Inspect = %+v, %v; want alive and running with our pid", round, st, err)
		}
		stopped := uptimeTicks()
		if err := c.Stop(); err != nil {
			t.Errorf("round %d: stop: %v", round, err)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("round %d: second stop: %v", round, err)
		}
		wantGone(t, procs, ports, dir, stopped)
		if _, err := devcluster.Inspect(dir); !errors.Is(err, devcluster.ErrNotRunning) {
			t.Errorf("round %d: Inspect after stop: %v; want ErrNotRunning", round, err)
		}
	}
}

// TestDownFromAnotherProcess runs a cluster in a child process, as `mengi
// dev-cluster up` does, and stops it with Down, as `mengi dev-cluster down`.
func TestDownFromAnotherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, st := startSupervisor(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stopped := uptimeTicks()
	if err := devcluster.Down(ctx, dir, 30*time.Second); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("supervisor: %v; want a clean exit after SIGTERM", err)
	}
	wantGone(t, st.Processes, st.Ports, dir, stopped)
}

// TestSupervisorKilled kills the supervisor with SIGKILL, so that it cannot
// clean up: the kernel must still end every component (parent-death signal).
func TestSupervisorKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, st := startSupervisor(t, dir)
	stopped := uptimeTicks()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wantGone(t, st.Processes, st.Ports, dir, stopped)
	// Down cleans the stale status file.
	if err := devcluster.Down(context.Background(), dir, time.Second); err != nil {
		t.Errorf("down after kill: %v", err)
	}
	if _, err := devcluster.Inspect(dir); !errors.Is(err, devcluster.ErrNotRunning) {
		t.Errorf("Inspect after down: %v; want ErrNotRunning", err)
	}
}

// startSupervisor re-runs the test binary as a cluster supervisor in dir
// (see TestMain) and waits until the cluster runs.
func startSupervisor(t *testing.T, dir string) (*exec.Cmd, devcluster.Status) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSupervisor+"="+dir)
	logf, err := os.Create(filepath.Join(t.TempDir(), "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := devcluster.Inspect(dir)
		if err == nil && st.Alive && st.State == "running" {
			return cmd, st
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("supervisor did not start the cluster: %+v, %v\n%s", st, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantGone checks that no component process, no listening port and no
// process mentioning dir is left by a cluster stopped at uptime tick stopped.
func wantGone(t *testing.T, procs []devcluster.ProcessInfo, ports devcluster.Ports, dir string, stopped int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range procs {
		for devcluster.ProcessAlive(p.PID) {
			if time.Now().After(deadline) {
				t.Errorf("%s (pid %d) still running", p.Name, p.PID)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Parallel tests and packages start clusters too, and the kernel may give
	// them a port this cluster had: only a listener in a process that was
	// there before the stop counts.
	for _, port := range ports.List() {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err != nil {
			continue
		}
		conn.Close()
		for _, pid := range listenerPIDs(port) {
			if st, err := startTicks(pid); err == nil && st < stopped {
				t.Errorf("port %d still listened to by pid %d, which started before the stop", port, pid)
			}
		}
	}
	if pids := processesMentioning(dir); len(pids) > 0 {
		t.Errorf("processes still mention %s: %v", dir, pids)
	}
}

// processesMentioning returns the pids whose command line contains s.
func processesMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return pids
}

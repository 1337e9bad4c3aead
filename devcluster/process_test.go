package devcluster

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopKillsTheProcessGroup starts a shell that starts a grandchild and
// ignores SIGTERM; stop must end both within the grace period plus a little.
func TestStopKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	sp := newSpawner()
	defer sp.close()
	pidFile := filepath.Join(dir, "grandchild")
	script := "trap '' TERM; sleep 300 & echo $! > " + pidFile + "; wait"
	p, err := startProcess(sp, "sh", "/bin/sh", []string{"-c", script}, dir, filepath.Join(dir, "sh.log"))
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	for deadline := time.Now().Add(5 * time.Second); grandchild == 0; {
		b, _ := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if time.Now().After(deadline) {
			t.Fatal("the shell did not start its child")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pgid, _ := syscall.Getpgid(p.pid()); pgid != p.pid() {
		t.Errorf("process group %d; want its own, %d", pgid, p.pid())
	}
	begin := time.Now()
	p.stop(300 * time.Millisecond)
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("stop took %s", d)
	}
	if p.exitErr() == nil {
		t.Error("the shell still runs after stop")
	}
	for deadline := time.Now().Add(3 * time.Second); processAlive(grandchild); {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived stop", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(p.logTail(5), "=== ") {
		t.Errorf("log lacks the command line header: %q", p.logTail(5))
	}
}

func TestPickPortsDistinct(t *testing.T) {
	p, err := pickPorts(0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, port := range p.List() {
		if port <= 0 || seen[port] {
			t.Errorf("ports %+v: %d is zero or repeated", p, port)
		}
		seen[port] = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := l.Addr().(*net.TCPAddr).Port
	if _, err := pickPorts(taken); err == nil {
		t.Errorf("pickPorts(%d) accepted a port in use", taken)
	}
	l.Close()
	if p, err := pickPorts(taken); err != nil || p.APIServer != taken {
		t.Errorf("pickPorts(%d) = %+v, %v; want that API server port", taken, p, err)
	}
}

func TestFailureDetectsPortInUse(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "x.log")
	line := `"command failed" err="listen tcp 127.0.0.1:6443: bind: address already in use"`
	if err := os.WriteFile(log, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &process{name: "x", logPath: log}
	err := p.failure(errors.New("exited"))
	if !errors.Is(err, errPortInUse) || !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), log) {
		t.Errorf("failure = %v; want errPortInUse with the log path and its last line", err)
	}
}

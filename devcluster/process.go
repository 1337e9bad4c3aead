package devcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// spawner starts every child of one cluster from a single goroutine locked to
// its OS thread. The children get SIGKILL as parent-death signal, which Linux
// sends when the thread that forked them exits, not the process; so the
// thread must live exactly as long as the cluster: it exits when close
// returns, after the children were stopped, or when the whole process dies.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	// Never unlocked: the runtime ends the thread when loop returns.
	defer close(s.done)
	for r := range s.reqs {
		r.errc <- r.cmd.Start()
	}
}

// start runs cmd.Start on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}

// close ends the spawner goroutine and its thread. Call it once, after the
// children were stopped.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// process is one running component. It leads its own process group, so
// signals to the group reach anything it started.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when Wait returned
	waitErr error         // Wait's result; read after exited is closed
	stopped sync.Once
}

// startProcess starts bin with args in dir, appending stdout and stderr to
// logPath. A goroutine owned by the returned process waits for it.
func startProcess(sp *spawner, name, bin string, args []string, dir, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "=== %s %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := sp.start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID returns the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exitErr returns a non-nil error when the process has exited.
func (p *process) exitErr() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v", p.name, p.waitErr)
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then sends
// SIGKILL to the group. It returns once the process was reaped, and sends a
// last SIGKILL to the group for any child left behind.
func (p *process) stop(grace time.Duration) {
	p.stopped.Do(func() {
		pg := -p.pid()
		_ = syscall.Kill(pg, syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			_ = syscall.Kill(pg, syscall.SIGKILL)
			<-p.exited
		}
		_ = syscall.Kill(pg, syscall.SIGKILL)
	})
}

// logTail returns the last n lines of the process log.
func (p *process) logTail(n int) string {
	return tail(p.logPath, n)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// errPortInUse marks a start that failed because another process took one of
// the chosen ports first; Start retries with new ports.
var errPortInUse = errors.New("port already in use")

// failure describes a component that did not come up: the reason, where its
// log is, and the log's last lines.
func (p *process) failure(reason error) error {
	t := p.logTail(25)
	err := fmt.Errorf("%s: %w\n--- last lines of %s ---\n%s", p.name, reason, p.logPath, t)
	if strings.Contains(t, "address already in use") {
		return fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return err
}

// processAlive reports whether pid runs; a zombie (exited, not yet reaped by
// whoever inherited it) does not count.
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

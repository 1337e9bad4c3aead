package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Files in the state folder.
const (
	statusFile     = "status.json"
	lockFile       = "lock"
	kubeconfigFile = "admin.kubeconfig"
	logDirName     = "logs"
)

// Status is what a running cluster records in status.json of its state
// folder, so that other processes (mengi dev-cluster status and down) can
// find it.
type Status struct {
	// PID is the process that called Start and supervises the cluster.
	PID int `json:"pid"`
	// State is "starting", "running" or "stopping".
	State string `json:"state"`
	// Started is when Start began.
	Started time.Time `json:"started"`
	// Server is the API server URL.
	Server string `json:"server"`
	// Kubeconfig is the admin kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// LogDir holds one log file per component.
	LogDir string `json:"logDir"`
	// Ports are the cluster's loopback ports.
	Ports Ports `json:"ports"`
	// Processes are the components started so far.
	Processes []ProcessInfo `json:"processes"`
	// Alive reports whether the supervisor still holds the state folder's
	// lock. It is computed by Inspect, not stored.
	Alive bool `json:"-"`
}

// ProcessInfo is one component process; its PID is also its process group.
type ProcessInfo struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	Binary string `json:"binary"`
}

// ErrNotRunning is returned by Inspect when a state folder has no status.
var ErrNotRunning = errors.New("devcluster: no cluster in this state folder")

// lockState takes the exclusive lock of dir, which the supervisor holds
// while the cluster runs. The descriptor is close-on-exec, so the children do
// not inherit it, and the kernel releases it when the supervisor dies.
func lockState(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("devcluster: a cluster already runs in %s (see `mengi dev-cluster status`)", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// writeStatus replaces status.json atomically.
func writeStatus(dir string, st Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, statusFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, statusFile))
}

// Inspect reads the status of the cluster in stateDir and whether its
// supervisor is alive. It returns ErrNotRunning when there is no status file.
func Inspect(stateDir string) (Status, error) {
	var st Status
	b, err := os.ReadFile(filepath.Join(stateDir, statusFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, ErrNotRunning
	}
	if err != nil {
		return st, fmt.Errorf("devcluster: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("devcluster: %s: %w", statusFile, err)
	}
	st.Alive = lockHeld(stateDir)
	return st, nil
}

// lockHeld reports whether another process holds the lock of dir.
func lockHeld(dir string) bool {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Down stops the cluster recorded in stateDir from another process: it sends
// SIGTERM to the supervisor and waits for it to release the state folder,
// then kills any component process group still alive (checking that its PID
// still runs the recorded binary). Down on a stopped cluster only cleans up.
func Down(ctx context.Context, stateDir string, timeout time.Duration) error {
	st, err := Inspect(stateDir)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Alive && st.PID > 0 {
		if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("devcluster: signal supervisor %d: %w", st.PID, err)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for lockHeld(stateDir) {
			select {
			case <-ctx.Done():
				// The children die with the supervisor (parent-death signal).
				_ = syscall.Kill(st.PID, syscall.SIGKILL)
				time.Sleep(200 * time.Millisecond)
				return killLeftovers(st, stateDir, fmt.Errorf("devcluster: supervisor %d did not stop within %s; killed", st.PID, timeout))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return killLeftovers(st, stateDir, nil)
}

func killLeftovers(st Status, stateDir string, err error) error {
	for _, p := range st.Processes {
		if exe, e := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID)); e == nil && exe == p.Binary {
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		}
	}
	if e := os.Remove(filepath.Join(stateDir, statusFile)); e != nil && !errors.Is(e, os.ErrNotExist) && err == nil {
		err = fmt.Errorf("devcluster: %w", e)
	}
	return err
}

// Package disktest gives tests a small file system of their own to fill:
// a tmpfs mounted for the test, and a filler file that takes every byte
// left on it (what a repository's disk looks like when it is full).
package disktest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv is set in the copy of a test run inside a user and mount
// namespace (see Mount).
const childEnv = "MENGI_DISKTEST_CHILD"

// ForceUnshareEnv, set to 1, makes Mount take its fallback (a child in
// a namespace) even where this process may mount, to test that path.
const ForceUnshareEnv = "MENGI_DISKTEST_UNSHARE"

// Mount returns a directory on a tmpfs of size bytes mounted for the
// test, unmounted when the test ends (the test's child processes must
// have exited by then: register their cleanups after calling Mount).
//
// When this process may not mount (it is not root), the test is run again
// in a child process inside a user and mount namespace (`unshare -rm`),
// where it may: Mount then returns "" once that child has ended, its
// output and outcome being the test's, and the caller returns at once.
// When neither works the test fails, saying why; it is never skipped.
func Mount(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	child := os.Getenv(childEnv) == "1"
	var mountErr error
	if child || os.Getenv(ForceUnshareEnv) != "1" {
		mountErr = syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size))
		if mountErr == nil {
			t.Cleanup(func() { unmount(t, dir) })
			return dir
		}
		if child {
			t.Fatalf("mount a %d-byte tmpfs on %s inside `unshare -rm`: %v", size, dir, mountErr)
		}
	} else {
		mountErr = errors.New(ForceUnshareEnv + "=1")
	}
	// Run this very test in a namespace where it may mount.
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("a full disk needs a small file system: mounting a tmpfs failed (%v) and unshare(1), to mount one in a user and mount namespace instead, is not on PATH (%v)", mountErr, err)
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	args := []string{"-rm", "--", os.Args[0], "-test.run", strings.Join(parts, "/"), "-test.count", "1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	t.Logf("mounting a tmpfs here failed (%v): the test ran in a user and mount namespace (unshare -rm):\n%s", mountErr, out.String())
	switch {
	case runErr != nil && !bytes.Contains(out.Bytes(), []byte("--- ")):
		t.Fatalf("a full disk needs a small file system: mounting a tmpfs failed (%v), and so did running the test under `unshare -rm` (user namespaces off?): %v", mountErr, runErr)
	case runErr != nil:
		t.Fatalf("the test failed in its namespace: %v", runErr)
	case !bytes.Contains(out.Bytes(), []byte("--- PASS: "+t.Name())):
		t.Fatalf("the test did not run in its namespace (no PASS line for %s)", t.Name())
	}
	return ""
}

func unmount(t *testing.T, dir string) {
	var err error
	for range 50 {
		if err = syscall.Unmount(dir, 0); err == nil || !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond) // a child process still exiting
	}
	if err != nil {
		t.Errorf("unmount %s: %v; detaching it", dir, err)
		syscall.Unmount(dir, syscall.MNT_DETACH)
	}
}

// Filler is a file taking the free space of a file system.
type Filler struct {
	path string
	// Bytes is how much it took.
	Bytes int64
}

// Fill writes a file in dir until the file system is full (ENOSPC) and
// returns it; Remove gives the space back.
func Fill(t testing.TB, dir string) *Filler {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatalf("create the filler: %v", err)
	}
	defer f.Close()
	fl := &Filler{path: f.Name()}
	chunk := make([]byte, 1<<20)
	for {
		n, err := f.Write(chunk)
		fl.Bytes += int64(n)
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("fill %s: %v", dir, err)
		}
		if len(chunk) == 1 {
			return fl
		}
		chunk = chunk[:len(chunk)/2] // the last few pages
	}
}

// Remove deletes the filler: the space is free again.
func (f *Filler) Remove(t testing.TB) {
	t.Helper()
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("remove the filler: %v", err)
	}
}

// Free is how many bytes the file system holding dir has free.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

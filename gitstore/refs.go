package gitstore

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// ErrRefChanged means the branch moved since it was read: someone else (a
// `git push`, another process) committed in between.
var ErrRefChanged = errors.New("branch was updated concurrently")

// refFile reads and updates one ref the way git does: a `<ref>.lock` file
// created exclusively, written, fsynced and renamed over the ref, then the
// directory fsynced. So a concurrent git CLI writer is excluded, readers
// never see a torn or empty ref, and a crash leaves the old or the new value.
type refFile struct {
	gitDir string
	name   plumbing.ReferenceName
}

func (r refFile) path() string { return filepath.Join(r.gitDir, filepath.FromSlash(r.name.String())) }

// read returns the ref's hash, from its loose file or from packed-refs; the
// zero hash when the branch does not exist yet.
func (r refFile) read() (plumbing.Hash, error) {
	b, err := os.ReadFile(r.path())
	if err == nil {
		s := strings.TrimSpace(string(b))
		if !plumbing.IsHash(s) {
			return plumbing.ZeroHash, fmt.Errorf("ref %s: unexpected content %q", r.name, s)
		}
		return plumbing.NewHash(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, fmt.Errorf("read ref %s: %w", r.name, err)
	}
	return r.readPacked()
}

func (r refFile) readPacked() (plumbing.Hash, error) {
	f, err := os.Open(filepath.Join(r.gitDir, "packed-refs"))
	if errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read packed-refs: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		hash, name, ok := strings.Cut(line, " ")
		if ok && name == r.name.String() && plumbing.IsHash(hash) {
			return plumbing.NewHash(hash), nil
		}
	}
	if err := sc.Err(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read packed-refs: %w", err)
	}
	return plumbing.ZeroHash, nil
}

// lockWait bounds how long update waits for a lock held by a git process.
const lockWait = 5 * time.Second

// refLock is a held, written and fsynced `<ref>.lock`: the new value is
// durable but not yet the ref's.
type refLock struct {
	ref  refFile
	path string
}

// lock takes the ref's lock file, checks that the ref still holds old, and
// writes and fsyncs new into the lock file. The caller must commit or
// abort the lock.
func (r refFile) lock(old, new plumbing.Hash) (*refLock, error) {
	lock := r.path() + ".lock"
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		return nil, fmt.Errorf("update ref %s: %w", r.name, err)
	}
	f, err := createExclusive(lock)
	if err != nil {
		return nil, fmt.Errorf("update ref %s: %w", r.name, err)
	}
	fail := func(err error) (*refLock, error) {
		f.Close()
		os.Remove(lock)
		return nil, err
	}
	cur, err := r.read()
	if err != nil {
		return fail(err)
	}
	if cur != old {
		return fail(fmt.Errorf("update ref %s from %s: now at %s: %w", r.name, short(old), short(cur), ErrRefChanged))
	}
	if _, err := f.WriteString(new.String() + "\n"); err != nil {
		return fail(fmt.Errorf("update ref %s: %w", r.name, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("update ref %s: fsync: %w", r.name, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("update ref %s: %w", r.name, err))
	}
	return &refLock{ref: r, path: lock}, nil
}

// commit renames the lock over the ref and fsyncs the directory.
func (l *refLock) commit() error {
	if err := os.Rename(l.path, l.ref.path()); err != nil {
		l.abort()
		return fmt.Errorf("update ref %s: %w", l.ref.name, err)
	}
	return syncDir(filepath.Dir(l.ref.path()))
}

// abort releases the lock without changing the ref.
func (l *refLock) abort() { os.Remove(l.path) }

// createExclusive creates path with O_EXCL, retrying for a while when git
// holds it. A lock file older than lockWait was left by a process that
// died holding it (git and gitstore hold a ref lock for milliseconds) and
// is removed.
func createExclusive(path string) (*os.File, error) {
	deadline := time.Now().Add(lockWait + time.Second)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			return f, nil
		}
		if fi, serr := os.Stat(path); errors.Is(err, os.ErrExist) && serr == nil && time.Since(fi.ModTime()) > lockWait {
			os.Remove(path)
			continue
		}
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncDir fsyncs a directory so that renames and new entries in it survive a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "(none)"
	}
	return h.String()[:10]
}

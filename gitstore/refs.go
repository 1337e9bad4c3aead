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

// refFile reads and updates one ref with git's lock protocol: while a
// `<ref>.lock` file created exclusively exists, the ref is ours; the new
// value, written and fsynced beforehand, is renamed over the ref and the
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

// check fails with ErrRefChanged unless the ref holds old.
func (r refFile) check(old plumbing.Hash) error {
	cur, err := r.read()
	if err != nil {
		return err
	}
	if cur != old {
		return fmt.Errorf("update ref %s from %s: now at %s: %w", r.name, short(old), short(cur), ErrRefChanged)
	}
	return nil
}

// refValue is a ref's next value written and fsynced ahead of time in a
// temporary file of the git directory, so that moving the ref later takes
// a single fsync (see swap). The committer prepares it while the batch
// before is still landing.
type refValue struct {
	ref  refFile
	path string
}

// prepare writes new to a fsynced temporary file for swap.
func (r refFile) prepare(new plumbing.Hash) (*refValue, error) {
	f, err := os.CreateTemp(r.gitDir, tmpRefPrefix)
	if err != nil {
		return nil, fmt.Errorf("update ref %s: %w", r.name, err)
	}
	v := &refValue{ref: r, path: f.Name()}
	_, err = f.WriteString(new.String() + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		v.discard()
		return nil, fmt.Errorf("update ref %s: %w", r.name, err)
	}
	return v, nil
}

// tmpRefPrefix names the temporary files of prepared ref values.
const tmpRefPrefix = "tmp_mengi_ref_"

// swap moves the ref from old to the prepared value: it takes the ref's
// lock file (which is what excludes git and other stores), checks the ref
// still holds old, renames the prepared file over the ref, drops the lock
// and fsyncs the ref's directory, once. The value's content was fsynced
// when prepared, so a crash leaves the old ref or the new one, never a
// torn one. ErrRefChanged when the ref moved; the value is discarded on
// any error.
func (v *refValue) swap(old plumbing.Hash) error {
	r := v.ref
	lock := r.path() + ".lock"
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		v.discard()
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
	f, err := createExclusive(lock)
	if err != nil {
		v.discard()
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
	f.Close()
	if err := r.check(old); err != nil {
		os.Remove(lock)
		v.discard()
		return err
	}
	if err := os.Rename(v.path, r.path()); err != nil {
		os.Remove(lock)
		v.discard()
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
	os.Remove(lock)
	return syncDir(filepath.Dir(r.path()))
}

// discard removes a value that will not be used.
func (v *refValue) discard() { os.Remove(v.path) }

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

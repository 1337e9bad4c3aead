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
	"golang.org/x/sys/unix"
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
	spares *spareFiles // replaced ref files to write new values into; may be nil
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

// prepare writes new to a fsynced temporary file for swap: a spare (a
// ref file replaced earlier) when there is one, a new file otherwise.
func (r refFile) prepare(new plumbing.Hash) (*refValue, error) {
	f, err := r.valueFile()
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

// valueFile opens an empty file for a ref value.
func (r refFile) valueFile() (*os.File, error) {
	if path, ok := r.spares.take(); ok {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err == nil {
			return f, nil
		}
		os.Remove(path)
	}
	return os.CreateTemp(r.gitDir, tmpRefPrefix)
}

// tmpRefPrefix names the temporary files of prepared ref values.
const tmpRefPrefix = "tmp_mengi_ref_"

// swap moves the ref from old to the prepared value with git's lock
// protocol: the prepared file is renamed to the ref's lock file without
// replacing one (taking the lock excludes git and other stores), the ref
// is checked to still hold old, then the lock file and the ref trade
// places, the lock (now the old value) is moved aside as a spare, and the
// ref's directory is fsynced, once. The value's content was fsynced when
// prepared, so a crash leaves the old ref or the new one, never a torn
// one. ErrRefChanged when the ref moved; the value is discarded on any
// error. On file systems without renameat2 it falls back to creating the
// lock file and renaming the value over the ref.
func (v *refValue) swap(old plumbing.Hash) error {
	r := v.ref
	lock := r.path() + ".lock"
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		v.discard()
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
	locked, err := lockWith(v.path, lock)
	if err != nil {
		v.discard()
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
	if !locked {
		return v.swapCreatingLock(old, lock)
	}
	if err := r.check(old); err != nil {
		v.unlock(lock)
		return err
	}
	if err := v.replace(lock, old.IsZero()); err != nil {
		v.unlock(lock)
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
	return syncDir(filepath.Dir(r.path()))
}

// replace makes the value at lock the ref. The replaced ref file is kept
// as a spare: the two trade places atomically, then the old value leaves
// the lock's name, which releases the lock.
func (v *refValue) replace(lock string, noRef bool) error {
	ref := v.ref.path()
	if !noRef {
		// The old ref file becomes the lock file for a moment: give it
		// a fresh time, or a store seeing an old lock would call it stale.
		now := time.Now()
		if err := os.Chtimes(ref, now, now); err == nil {
			if err := unix.Renameat2(unix.AT_FDCWD, lock, unix.AT_FDCWD, ref, unix.RENAME_EXCHANGE); err == nil {
				if err := os.Rename(lock, v.path); err != nil {
					os.Remove(lock)
					return nil
				}
				v.ref.spares.put(v.path)
				return nil
			}
		}
	}
	return os.Rename(lock, ref)
}

// unlock gives up the lock taken by renaming the value to it (the lock
// file is the value: removing it discards both).
func (v *refValue) unlock(lock string) { os.Remove(lock) }

// swapCreatingLock is swap where renameat2 is missing: the lock file is
// created, the value renamed over the ref and the lock removed.
func (v *refValue) swapCreatingLock(old plumbing.Hash, lock string) error {
	r := v.ref
	if err := createLock(lock); err != nil {
		v.discard()
		return fmt.Errorf("update ref %s: %w", r.name, err)
	}
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

// lockWith takes the lock by renaming the value file to it without
// replacing one (see takeLock); false without an error when the file
// system cannot rename that way.
func lockWith(value, lock string) (bool, error) {
	err := takeLock(lock, func() error {
		return unix.Renameat2(unix.AT_FDCWD, value, unix.AT_FDCWD, lock, unix.RENAME_NOREPLACE)
	})
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	return err == nil, err
}

// discard removes a value that will not be used.
func (v *refValue) discard() { os.Remove(v.path) }

// createLock takes the lock by creating it empty (see takeLock).
func createLock(lock string) error {
	return takeLock(lock, func() error {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
		}
		return err
	})
}

// takeLock runs try, which makes the lock file and fails with an
// os.ErrExist error while the lock is held, until it succeeds, waiting a
// while for git to release it. A lock older than lockWait was left by a
// process that died holding it (git and gitstore hold a ref lock for
// milliseconds) and is removed.
func takeLock(lock string, try func() error) error {
	deadline := time.Now().Add(lockWait + time.Second)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) {
			return fmt.Errorf("lock %s: %w", filepath.Base(lock), err)
		}
		if fi, serr := os.Stat(lock); serr == nil && time.Since(fi.ModTime()) > lockWait {
			os.Remove(lock)
			continue
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

package gitstore

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("gitstore: closed")

// ErrDiskFull is in the error of a write that failed because the file
// system holding the repository is full (ENOSPC) or its user's quota is
// used up (EDQUOT), wrapped with the file system's error. Nothing of the
// write was made: the branch did not move and the batch's temporary files
// were removed. The store takes writes again as soon as space is freed,
// without a restart.
var ErrDiskFull = errors.New("gitstore: the repository's disk is full")

// IsDiskFull reports whether err comes from a full file system or a
// used-up quota (ENOSPC, EDQUOT), or is an ErrDiskFull: for the
// repository's neighbours (the push check's hook, the registry's files)
// that write beside the store.
func IsDiskFull(err error) bool {
	return errors.Is(err, ErrDiskFull) || isDiskFull(err)
}

// isDiskFull reports whether err comes from a full file system or a
// used-up quota.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// diskFull marks err with ErrDiskFull when it comes from a full disk;
// other errors (and nil) are returned as they are.
func diskFull(err error) error {
	if err == nil || !isDiskFull(err) || errors.Is(err, ErrDiskFull) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDiskFull, err)
}

func errDuplicateID(id, other string) error {
	return fmt.Errorf("metadata.id %s is already used by %s", id, other)
}

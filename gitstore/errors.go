package gitstore

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("gitstore: closed")

func errDuplicateID(id, other string) error {
	return fmt.Errorf("metadata.id %s is already used by %s", id, other)
}

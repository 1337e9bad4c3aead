package gitstore

import (
	"context"
	"fmt"
	"os"
	"time"
)

// tempFiles hands out empty temporary files for packs, made ahead of time
// by a background goroutine, so that writing a batch never waits for a
// file to be created.
//
// They live in the git directory, not in the pack directory: go-git lists
// the pack directory by stat-ing every entry and fails, finding no pack,
// when one disappears meanwhile; temporary files there that are renamed
// away all the time made a store miss objects another store had just
// published (TestTwoStoresWritingAtOnce). Only packs enter and leave it.
//
// Creating a file is the costliest step of staging a small pack: on ext4
// without a journal, the inode allocator checks every inode of the block
// group freed in the last minutes before taking one, and merges free two
// per batch; under sustained load a create took 0.2-0.8 ms, a quarter of
// the committer's time. Made ahead, a file costs no writer latency.
//
// A file that was ever a pack is never written again: a clone on the same
// disk hard-links packs, an alternate reads them by name, and a running
// git maps them. Merged-away packs are deleted (removePacks); reusing them
// emptied the packs of every clone that shared them.
type tempFiles struct {
	dir   string
	ready chan *os.File
}

// tempFilesAhead is how many files are kept ready: a burst of four
// batches, two files each, before writers create their own.
const tempFilesAhead = 8

// tmpPackPrefix names temporary pack and index files.
const tmpPackPrefix = "tmp_mengi_pack_"

func newTempFiles(dir string) *tempFiles {
	return &tempFiles{dir: dir, ready: make(chan *os.File, tempFilesAhead)}
}

// create returns an empty file open for writing: a ready one, or a new
// one when none is. A nil pool creates.
func (t *tempFiles) create(dir string) (*os.File, error) {
	if t != nil && t.dir == dir {
		select {
		case f := <-t.ready:
			return f, nil
		default:
		}
	}
	f, err := os.CreateTemp(dir, tmpPackPrefix)
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	return f, nil
}

// fill keeps files ready until ctx is done, then removes the unused ones.
func (t *tempFiles) fill(ctx context.Context) {
	defer t.drain()
	for {
		f, err := os.CreateTemp(t.dir, tmpPackPrefix)
		if err != nil {
			// Writers create their own meanwhile, and see the error.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case t.ready <- f:
		case <-ctx.Done():
			f.Close()
			os.Remove(f.Name())
			return
		}
	}
}

func (t *tempFiles) drain() {
	for {
		select {
		case f := <-t.ready:
			f.Close()
			os.Remove(f.Name())
		default:
			return
		}
	}
}

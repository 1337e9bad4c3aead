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
	dir    string
	ready  chan *os.File
	faults *faults // logs a failing fill once; nil: not logged
}

// tempFilesAhead is how many files are kept ready: a burst of four
// batches, two files each, before writers create their own.
const tempFilesAhead = 8

// tempFilesRetry is the pause before fill tries again after failing.
const tempFilesRetry = time.Second

// tmpPackPrefix names temporary pack and index files.
const tmpPackPrefix = "tmp_mengi_pack_"

func newTempFiles(dir string, f *faults) *tempFiles {
	return &tempFiles{dir: dir, ready: make(chan *os.File, tempFilesAhead), faults: f}
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
// While files cannot be created (a full disk), it tries again every
// tempFilesRetry, saying so once.
func (t *tempFiles) fill(ctx context.Context) {
	defer t.drain()
	for {
		f, err := os.CreateTemp(t.dir, tmpPackPrefix)
		if err != nil {
			// Writers create their own meanwhile, and see the error.
			if t.faults != nil {
				t.faults.failed(faultTempFiles, "making temporary pack files ahead failed; trying again every second", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(tempFilesRetry):
			}
			continue
		}
		if t.faults != nil {
			t.faults.ok(faultTempFiles, "temporary pack files are made ahead again")
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

package gitstore

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
)

// historyFile is the history index saved in the git directory
// (historyFileName), so that a restart walks only the commits made since
// it was written instead of the whole history. It is a cache: when it is
// missing, unreadable, or its head is no longer an ancestor of the branch
// head, the store rebuilds it from the commits.
//
// Format: the line "mengi-history 1\n"; the head (20 bytes); the number of
// commits (uvarint) and their ids (20 bytes each); the number of
// deployments (uvarint) and for each its id (uvarint length, bytes), the
// number of its commits (uvarint) and their positions in the commit list
// (uvarint each), oldest first; the SHA-1 of everything before (20 bytes).
type historyFile struct {
	path  string
	head  plumbing.Hash              // every commit reachable from it is in known
	known map[plumbing.Hash]struct{} // the commits recorded
	byID  map[string][]plumbing.Hash // deployment id → commits, oldest first
}

// historyFileName is the file's name in the git directory.
const historyFileName = "mengi-history"

const historyMagic = "mengi-history 1\n"

func (s *Store) historyFile() historyFile {
	return historyFile{path: filepath.Join(s.dir, historyFileName)}
}

func emptyHistoryFile() *historyFile {
	return &historyFile{known: map[plumbing.Hash]struct{}{}, byID: map[string][]plumbing.Hash{}}
}

// load reads the file; an empty history when there is none.
func (f historyFile) load() (*historyFile, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return emptyHistoryFile(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", historyFileName, err)
	}
	out, err := decodeHistoryFile(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", historyFileName, err)
	}
	out.path = f.path
	return out, nil
}

var errHistoryFile = errors.New("not a valid history file")

func decodeHistoryFile(data []byte) (*historyFile, error) {
	if len(data) < len(historyMagic)+2*sha1.Size || string(data[:len(historyMagic)]) != historyMagic {
		return nil, errHistoryFile
	}
	body, sum := data[:len(data)-sha1.Size], data[len(data)-sha1.Size:]
	if sha1.Sum(body) != [sha1.Size]byte(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errHistoryFile)
	}
	r := bytes.NewReader(body[len(historyMagic):])
	out := emptyHistoryFile()
	if _, err := io.ReadFull(r, out.head[:]); err != nil {
		return nil, errHistoryFile
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()/sha1.Size) {
		return nil, errHistoryFile
	}
	commits := make([]plumbing.Hash, n)
	for i := range commits {
		io.ReadFull(r, commits[i][:])
		out.known[commits[i]] = struct{}{}
	}
	ids, err := binary.ReadUvarint(r)
	if err != nil || ids > uint64(r.Len()) {
		return nil, errHistoryFile
	}
	for range ids {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > uint64(r.Len()) {
			return nil, errHistoryFile
		}
		id := make([]byte, l)
		io.ReadFull(r, id)
		k, err := binary.ReadUvarint(r)
		if err != nil || k > uint64(r.Len()) {
			return nil, errHistoryFile
		}
		list := make([]plumbing.Hash, k)
		for j := range list {
			at, err := binary.ReadUvarint(r)
			if err != nil || at >= uint64(len(commits)) {
				return nil, errHistoryFile
			}
			list[j] = commits[at]
		}
		out.byID[string(id)] = list
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errHistoryFile)
	}
	return out, nil
}

// write replaces the file atomically (a temporary file renamed over it).
// It is not fsynced: after a crash a torn file fails its checksum and the
// history is rebuilt from the commits.
func (f *historyFile) write() error {
	return writeCacheFile(f.path, tmpHistoryPrefix, func(w *bufio.Writer) error {
		f.encode(w)
		return nil
	})
}

// tmpHistoryPrefix names the history file while it is written.
const tmpHistoryPrefix = "tmp_mengi_history_"

func (f *historyFile) encode(w *bufio.Writer) {
	var buf [binary.MaxVarintLen64]byte
	uvarint := func(v int) { w.Write(buf[:binary.PutUvarint(buf[:], uint64(v))]) }
	w.WriteString(historyMagic)
	w.Write(f.head[:])
	for _, list := range f.byID {
		for _, c := range list {
			f.known[c] = struct{}{}
		}
	}
	at := make(map[plumbing.Hash]int, len(f.known))
	uvarint(len(f.known))
	for c := range f.known {
		at[c] = len(at)
		w.Write(c[:])
	}
	uvarint(len(f.byID))
	for id, list := range f.byID {
		uvarint(len(id))
		w.WriteString(id)
		uvarint(len(list))
		for _, c := range list {
			uvarint(at[c])
		}
	}
}

package gitstore

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// The history file (historyFileName in the git directory) saves the
// history index, so that a restart walks only the commits made since it
// was written instead of the whole history. It is a cache: when it is
// missing, unreadable, or its head is no longer an ancestor of the branch
// head, the store rebuilds it from the commits.
//
// Format: the line "mengi-history 2\n"; the head (20 bytes); the number of
// commits (uvarint) and their ids (20 bytes each), in increasing order; the
// number of deployments (uvarint) and for each, in increasing order of
// id, its id (uvarint length, bytes), the number of its commits (uvarint)
// and their positions in the commit list (uvarint each), oldest first;
// the SHA-1 of everything before (20 bytes).

// historyFileName is the file's name in the git directory.
const historyFileName = "mengi-history"

const historyMagic = "mengi-history 2\n"

// historyBase is the history of a history file, held in a few flat
// arrays (no map, and no pointer per deployment or commit): about 45
// bytes a deployment plus 24 a commit, against about 190 for maps of
// slices. It is immutable; a save makes a new one.
type historyBase struct {
	head    plumbing.Hash   // every commit reachable from it is in commits
	commits []plumbing.Hash // increasing
	ids     string          // the deployment ids, increasing, end to end
	idEnd   []uint32        // id i is ids[idEnd[i-1]:idEnd[i]]
	listEnd []uint32        // id i's commits are at[listEnd[i-1]:listEnd[i]]
	at      []uint32        // positions in commits, oldest first per id
}

func emptyHistoryBase() *historyBase { return &historyBase{} }

// id returns the i-th deployment id.
func (b *historyBase) id(i int) string {
	start := uint32(0)
	if i > 0 {
		start = b.idEnd[i-1]
	}
	return b.ids[start:b.idEnd[i]]
}

// has reports whether commit c is in the file.
func (b *historyBase) has(c plumbing.Hash) bool {
	_, found := slices.BinarySearchFunc(b.commits, c, compareHash)
	return found
}

// find returns the position of deployment id, and whether it is there.
func (b *historyBase) find(id string) (int, bool) {
	lo, hi := 0, len(b.idEnd)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.id(m) < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(b.idEnd) && b.id(lo) == id
}

// commitsOf returns the commits of deployment id, oldest first (a new
// slice the caller may change).
func (b *historyBase) commitsOf(id string) []plumbing.Hash {
	i, found := b.find(id)
	if !found {
		return nil
	}
	return b.list(i)
}

// list returns the commits of the i-th deployment, oldest first.
func (b *historyBase) list(i int) []plumbing.Hash {
	start := uint32(0)
	if i > 0 {
		start = b.listEnd[i-1]
	}
	out := make([]plumbing.Hash, 0, b.listEnd[i]-start)
	for _, at := range b.at[start:b.listEnd[i]] {
		out = append(out, b.commits[at])
	}
	return out
}

func compareHash(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) }

// merge returns the base for head that holds b's history plus more: the
// commits of added (deployment id → commits, oldest first, after those
// of b) and known (every commit added, including those that touched no
// deployment).
func (b *historyBase) merge(head plumbing.Hash, added map[string][]plumbing.Hash, known map[plumbing.Hash]struct{}) *historyBase {
	fresh := make([]plumbing.Hash, 0, len(known))
	for c := range known {
		if !b.has(c) {
			fresh = append(fresh, c)
		}
	}
	slices.SortFunc(fresh, compareHash)
	commits, remap := mergeSorted(b.commits, fresh)
	out := &historyBase{head: head, commits: commits}
	newIDs := make([]string, 0, len(added))
	for id := range added {
		newIDs = append(newIDs, id)
	}
	slices.Sort(newIDs)
	var ids strings.Builder
	ids.Grow(len(b.ids) + 36*len(newIDs))
	out.idEnd = make([]uint32, 0, len(b.idEnd)+len(newIDs))
	out.listEnd = make([]uint32, 0, cap(out.idEnd))
	out.at = make([]uint32, 0, len(b.at)+len(fresh))
	// emit adds deployment id: the commits it had in b (its position
	// there, or -1), then those of more it did not have.
	emit := func(id string, inBase int, more []plumbing.Hash) {
		ids.WriteString(id)
		out.idEnd = append(out.idEnd, uint32(ids.Len()))
		var had []plumbing.Hash
		if inBase >= 0 {
			start := uint32(0)
			if inBase > 0 {
				start = b.listEnd[inBase-1]
			}
			for _, at := range b.at[start:b.listEnd[inBase]] {
				out.at = append(out.at, remap[at])
			}
			if len(more) > 0 {
				had = b.list(inBase)
			}
		}
		for _, c := range appendNew(had, more)[len(had):] {
			at, _ := slices.BinarySearchFunc(out.commits, c, compareHash)
			out.at = append(out.at, uint32(at))
		}
		out.listEnd = append(out.listEnd, uint32(len(out.at)))
	}
	i, j := 0, 0
	for i < len(b.idEnd) || j < len(newIDs) {
		switch {
		case j == len(newIDs) || i < len(b.idEnd) && b.id(i) < newIDs[j]:
			emit(b.id(i), i, nil)
			i++
		case i == len(b.idEnd) || newIDs[j] < b.id(i):
			emit(newIDs[j], -1, added[newIDs[j]])
			j++
		default: // in both
			emit(newIDs[j], i, added[newIDs[j]])
			i, j = i+1, j+1
		}
	}
	out.ids = ids.String()
	return out
}

// mergeSorted merges two increasing lists without duplicates, and says
// where each of a's items went.
func mergeSorted(a, b []plumbing.Hash) (merged []plumbing.Hash, remap []uint32) {
	merged = make([]plumbing.Hash, 0, len(a)+len(b))
	remap = make([]uint32, len(a))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && compareHash(a[i], b[j]) < 0:
			remap[i] = uint32(len(merged))
			merged = append(merged, a[i])
			i++
		case i == len(a) || compareHash(b[j], a[i]) < 0:
			merged = append(merged, b[j])
			j++
		default:
			remap[i] = uint32(len(merged))
			merged = append(merged, a[i])
			i, j = i+1, j+1
		}
	}
	return merged, remap
}

// loadHistoryFile reads the file at path; an empty history when there is
// none.
func loadHistoryFile(path string) (*historyBase, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return emptyHistoryBase(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", historyFileName, err)
	}
	out, err := decodeHistoryFile(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", historyFileName, err)
	}
	return out, nil
}

var errHistoryFile = errors.New("not a valid history file")

// errHistoryOutdated is a history file another version of the store
// wrote: expected once after an upgrade.
var errHistoryOutdated = fmt.Errorf("%w: written by another version", errHistoryFile)

func decodeHistoryFile(data []byte) (*historyBase, error) {
	if line, _, whole := bytes.Cut(data, []byte("\n")); whole && bytes.HasPrefix(line, []byte("mengi-history ")) && string(line)+"\n" != historyMagic {
		return nil, fmt.Errorf("%w (format %q)", errHistoryOutdated, line[len("mengi-history "):])
	}
	if len(data) < len(historyMagic)+2*sha1.Size || string(data[:len(historyMagic)]) != historyMagic {
		return nil, errHistoryFile
	}
	body, sum := data[:len(data)-sha1.Size], data[len(data)-sha1.Size:]
	if sha1.Sum(body) != [sha1.Size]byte(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errHistoryFile)
	}
	d := histDecoder{b: body[len(historyMagic):]}
	out := &historyBase{}
	copy(out.head[:], d.bytes(sha1.Size))
	n := d.count(sha1.Size)
	out.commits = make([]plumbing.Hash, n)
	for i := range out.commits {
		copy(out.commits[i][:], d.bytes(sha1.Size))
		if i > 0 && compareHash(out.commits[i-1], out.commits[i]) >= 0 {
			d.fail("commits out of order")
		}
	}
	m := d.count(2)
	out.idEnd, out.listEnd = make([]uint32, 0, m), make([]uint32, 0, m)
	var ids strings.Builder
	prev := ""
	for range m {
		id := string(d.bytes(d.count(1)))
		if len(out.idEnd) > 0 && id <= prev {
			d.fail("deployments out of order")
		}
		prev = id
		ids.WriteString(id)
		out.idEnd = append(out.idEnd, uint32(ids.Len()))
		for range d.count(1) {
			at := d.uvarint()
			if at >= uint64(n) {
				d.fail("commit position out of range")
			}
			out.at = append(out.at, uint32(at))
		}
		out.listEnd = append(out.listEnd, uint32(len(out.at)))
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	out.ids = ids.String()
	return out, nil
}

// histDecoder reads a history file's body; the first problem sticks.
type histDecoder struct {
	b   []byte
	err error
}

func (d *histDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errHistoryFile, what)
	}
	d.b = nil
}

func (d *histDecoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail("truncated")
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *histDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items of at least size bytes each, which the
// rest of the file must be able to hold.
func (d *histDecoder) count(size int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/size) {
		d.fail("count too large")
		return 0
	}
	return int(v)
}

// writeHistoryFile replaces the file at path atomically (a temporary file
// renamed over it). It is not fsynced: after a crash a torn file fails its
// checksum and the history is rebuilt from the commits.
func writeHistoryFile(path string, b *historyBase) error {
	return writeCacheFile(path, tmpHistoryPrefix, func(w *bufio.Writer) error {
		var buf [binary.MaxVarintLen64]byte
		uvarint := func(v int) { w.Write(buf[:binary.PutUvarint(buf[:], uint64(v))]) }
		w.WriteString(historyMagic)
		w.Write(b.head[:])
		uvarint(len(b.commits))
		for _, c := range b.commits {
			w.Write(c[:])
		}
		uvarint(len(b.idEnd))
		start := uint32(0)
		for i := range b.idEnd {
			id := b.id(i)
			uvarint(len(id))
			w.WriteString(id)
			uvarint(int(b.listEnd[i] - start))
			for _, at := range b.at[start:b.listEnd[i]] {
				uvarint(int(at))
			}
			start = b.listEnd[i]
		}
		return nil
	})
}

// tmpHistoryPrefix names the history file while it is written.
const tmpHistoryPrefix = "tmp_mengi_history_"

func (s *Store) historyPath() string { return filepath.Join(s.dir, historyFileName) }

package gitstore

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"
)

// object is an encoded Git object waiting to be written.
type object struct {
	typ  plumbing.ObjectType
	data []byte
	hash plumbing.Hash
}

func newObject(typ plumbing.ObjectType, data []byte) object {
	return object{typ: typ, data: data, hash: plumbing.ComputeHash(typ, data)}
}

// packTypes are the pack-format type codes of the objects gitstore writes.
var packTypes = map[plumbing.ObjectType]byte{
	plumbing.CommitObject: 1,
	plumbing.TreeObject:   2,
	plumbing.BlobObject:   3,
}

// encodedPack is a packfile and its version-2 index, ready to be written.
type encodedPack struct {
	name      string // pack-<checksum>
	pack, idx []byte
	objects   int
}

// packBuilder assembles a packfile from raw entries (an entry's header and
// compressed data, as they appear in a pack) and builds its index.
type packBuilder struct {
	buf     bytes.Buffer
	entries []packEntry
	seen    map[plumbing.Hash]bool
}

type packEntry struct {
	hash   plumbing.Hash
	offset uint32
	crc    uint32
}

func newPackBuilder(n int) *packBuilder {
	b := &packBuilder{entries: make([]packEntry, 0, n), seen: make(map[plumbing.Hash]bool, n)}
	b.buf.WriteString("PACK")
	binary.Write(&b.buf, binary.BigEndian, uint32(2))
	binary.Write(&b.buf, binary.BigEndian, uint32(0)) // count, set by finish
	return b
}

// addRaw appends an entry already encoded; duplicates are dropped.
func (b *packBuilder) addRaw(h plumbing.Hash, raw []byte) {
	if b.seen[h] {
		return
	}
	b.seen[h] = true
	b.entries = append(b.entries, packEntry{hash: h, offset: uint32(b.buf.Len()), crc: crc32.ChecksumIEEE(raw)})
	b.buf.Write(raw)
}

// finish writes the count and checksum and builds the index.
func (b *packBuilder) finish() *encodedPack {
	pack := b.buf.Bytes()
	binary.BigEndian.PutUint32(pack[8:12], uint32(len(b.entries)))
	packSum := sha1.Sum(pack)
	pack = append(pack, packSum[:]...)

	entries := slices.Clone(b.entries)
	slices.SortFunc(entries, func(x, y packEntry) int { return bytes.Compare(x.hash[:], y.hash[:]) })
	var idx bytes.Buffer
	idx.Write([]byte{0xff, 't', 'O', 'c'})
	binary.Write(&idx, binary.BigEndian, uint32(2))
	var fanout [256]uint32
	for _, e := range entries {
		fanout[e.hash[0]]++
	}
	var total uint32
	for i := range fanout {
		total += fanout[i]
		binary.Write(&idx, binary.BigEndian, total)
	}
	for _, e := range entries {
		idx.Write(e.hash[:])
	}
	for _, e := range entries {
		binary.Write(&idx, binary.BigEndian, e.crc)
	}
	for _, e := range entries {
		binary.Write(&idx, binary.BigEndian, e.offset)
	}
	idx.Write(packSum[:])
	idxSum := sha1.Sum(idx.Bytes())
	idx.Write(idxSum[:])
	return &encodedPack{name: "pack-" + plumbing.Hash(packSum).String(), pack: pack, idx: idx.Bytes(), objects: len(entries)}
}

// encodePack encodes objs (duplicates dropped) as one packfile, without
// deltas, and its index.
func encodePack(objs []object) (*encodedPack, error) {
	b := newPackBuilder(len(objs))
	var raw bytes.Buffer
	zw, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	for _, o := range objs {
		if b.seen[o.hash] {
			continue
		}
		raw.Reset()
		writeObjectHeader(&raw, packTypes[o.typ], len(o.data))
		zw.Reset(&raw)
		if _, err := zw.Write(o.data); err != nil {
			return nil, fmt.Errorf("encode pack: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("encode pack: %w", err)
		}
		b.addRaw(o.hash, raw.Bytes())
	}
	return b.finish(), nil
}

// writeObjectHeader writes a pack entry's type and size varint.
func writeObjectHeader(w *bytes.Buffer, typ byte, size int) {
	b := typ<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		w.WriteByte(b | 0x80)
		b = byte(size & 0x7f)
		size >>= 7
	}
	w.WriteByte(b)
}

// stagedPack is a pack and index written and fsynced under temporary names.
type stagedPack struct {
	dir, name         string
	tmpPack, tmpIndex string
}

// stage writes the pack and its index to fsynced temporary files in the
// pack directory, the two in parallel.
func (p *encodedPack) stage(gitDir string) (*stagedPack, error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	sp := &stagedPack{dir: dir, name: p.name}
	var idxErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sp.tmpIndex, idxErr = writeTemp(dir, p.idx)
	}()
	var packErr error
	sp.tmpPack, packErr = writeTemp(dir, p.pack)
	<-done
	if packErr != nil || idxErr != nil {
		sp.discard()
		if packErr != nil {
			return nil, packErr
		}
		return nil, idxErr
	}
	return sp, nil
}

// publish renames the pack and then its index into place (git and go-git
// find packs by their index) and fsyncs the directory.
func (sp *stagedPack) publish() error {
	if err := os.Rename(sp.tmpPack, filepath.Join(sp.dir, sp.name+".pack")); err != nil {
		sp.discard()
		return fmt.Errorf("publish %s: %w", sp.name, err)
	}
	if err := os.Rename(sp.tmpIndex, filepath.Join(sp.dir, sp.name+".idx")); err != nil {
		sp.discard()
		return fmt.Errorf("publish %s: %w", sp.name, err)
	}
	return syncDir(sp.dir)
}

func (sp *stagedPack) discard() {
	for _, f := range []string{sp.tmpPack, sp.tmpIndex} {
		if f != "" {
			os.Remove(f)
		}
	}
}

// writeTemp writes data to a new fsynced, read-only temporary file in dir
// and returns its path.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "tmp_mengi_")
	if err != nil {
		return "", fmt.Errorf("write pack: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("write pack: %w", err)
	}
	if err := writeTrickle(f, data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o444); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write pack: %w", err)
	}
	return tmp, nil
}

// trickleChunk is how much of a large file is written back at a time.
const trickleChunk = 512 << 10

// writeTrickle writes data to f; a large file (a merged pack) is flushed to
// disk chunk by chunk as it is written, so that its final fsync, and the
// journal commits that the committer's own small fsyncs trigger meanwhile,
// never have to write out megabytes at once: a merge does not stall writes.
func writeTrickle(f *os.File, data []byte) error {
	for off := 0; off < len(data); off += trickleChunk {
		end := min(off+trickleChunk, len(data))
		if _, err := f.Write(data[off:end]); err != nil {
			return err
		}
		if len(data) > trickleChunk {
			flags := unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
			if err := unix.SyncFileRange(int(f.Fd()), int64(off), int64(end-off), flags); err != nil && err != unix.ENOSYS {
				return err
			}
		}
	}
	return nil
}

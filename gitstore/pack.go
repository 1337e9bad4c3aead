package gitstore

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/adler32"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"
)

// object is an encoded Git object waiting to be written.
type object struct {
	typ  plumbing.ObjectType
	data []byte
	// tree is the content of a tree object made by editTree (data is then
	// nil): kept in chunks, never copied into one piece.
	tree tree
	hash plumbing.Hash
	// base, when not negative, is the index in the batch of an earlier
	// version of the same tree, which the pack may store this one as a
	// delta against; depth is the length of that chain.
	base, depth int
}

func newObject(typ plumbing.ObjectType, data []byte) object {
	return object{typ: typ, data: data, hash: hashObject(typ, data), base: -1}
}

// newTreeObject is the object of tree t.
func newTreeObject(t tree) object {
	h := objectHasher(plumbing.TreeObject, t.size)
	for i := range t.chunks {
		h.Write(t.chunks[i].data)
	}
	o := object{typ: plumbing.TreeObject, tree: t, base: -1}
	h.Sum(o.hash[:0])
	return o
}

// size is the length of the object's content.
func (o *object) size() int {
	if o.tree.n > 0 {
		return o.tree.size
	}
	return len(o.data)
}

// hashObject is the Git object id of data: the SHA-1 of its header and
// content. (go-git's own hashing detects SHA-1 collision attacks, which
// costs about ten times as much; gitstore only hashes content it made.)
func hashObject(typ plumbing.ObjectType, data []byte) plumbing.Hash {
	h := objectHasher(typ, len(data))
	h.Write(data)
	var out plumbing.Hash
	h.Sum(out[:0])
	return out
}

// objectHasher returns a SHA-1 that has hashed the header of an object of
// this type and size; the content comes next.
func objectHasher(typ plumbing.ObjectType, size int) hash.Hash {
	var hdr [32]byte
	b := append(hdr[:0], typ.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, 0)
	h := sha1.New()
	h.Write(b)
	return h
}

// Pack entry type codes.
const (
	packCommit   = 1
	packTree     = 2
	packBlob     = 3
	packTag      = 4
	packOfsDelta = 6
	packRefDelta = 7
)

// packTypes are the pack-format type codes of the objects gitstore writes.
var packTypes = map[plumbing.ObjectType]byte{
	plumbing.CommitObject: packCommit,
	plumbing.TreeObject:   packTree,
	plumbing.BlobObject:   packBlob,
}

// encodedPack is a packfile and its version-2 index. The committer
// encodes the entries; seal, on the goroutine that writes the pack, adds
// what only needs the bytes (CRCs, checksum, index), so the committer does
// not wait for it.
type encodedPack struct {
	name      string // pack-<checksum>, set by seal
	pack, idx []byte
	entries   []packEntry // in pack order; their CRCs are set by seal
}

// seal computes the entries' CRCs, the pack's checksum and its index.
func (p *encodedPack) seal() {
	for i := range p.entries {
		end := len(p.pack)
		if i+1 < len(p.entries) {
			end = int(p.entries[i+1].offset)
		}
		p.entries[i].crc = crc32.ChecksumIEEE(p.pack[p.entries[i].offset:end])
	}
	sum := sha1.Sum(p.pack)
	p.pack = append(p.pack, sum[:]...)
	p.name = "pack-" + plumbing.Hash(sum).String()
	p.idx = buildIndex(p.entries, sum)
}

// packBuilder assembles a packfile in memory and builds its index.
type packBuilder struct {
	buf     bytes.Buffer
	entries []packEntry
	offsets map[plumbing.Hash]uint32
}

type packEntry struct {
	hash   plumbing.Hash
	offset uint32
	crc    uint32
}

// newPackBuilder starts a pack of up to n objects and about size bytes in
// buf's memory (a buffer of an earlier pack, or nil).
func newPackBuilder(n, size int, buf []byte) *packBuilder {
	b := &packBuilder{entries: make([]packEntry, 0, n), offsets: make(map[plumbing.Hash]uint32, n)}
	b.buf = *bytes.NewBuffer(buf[:0])
	b.buf.Grow(size + 64)      // room for the checksum too
	b.buf.Write(packHeader(0)) // count, set by finish
	return b
}

// packHeader is the 12-byte header of a version-2 pack of n objects.
func packHeader(n int) []byte {
	h := []byte{'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[8:], uint32(n))
	return h
}

// finish writes the count; the pack still needs sealing.
func (b *packBuilder) finish() *encodedPack {
	pack := b.buf.Bytes()
	binary.BigEndian.PutUint32(pack[8:12], uint32(len(b.entries)))
	return &encodedPack{pack: pack, entries: b.entries}
}

// buildIndex makes the version-2 index of a pack holding entries (which
// it sorts by hash, in place).
func buildIndex(entries []packEntry, packSum [20]byte) []byte {
	slices.SortFunc(entries, func(x, y packEntry) int { return bytes.Compare(x.hash[:], y.hash[:]) })
	return indexOf(len(entries), func(i int) (plumbing.Hash, uint32, uint32) {
		return entries[i].hash, entries[i].crc, entries[i].offset
	}, packSum)
}

// indexOf makes the version-2 index of a pack of n objects; entry gives
// the i-th object's id, CRC and offset, in the order of the ids.
func indexOf(n int, entry func(i int) (h plumbing.Hash, crc, offset uint32), packSum [20]byte) []byte {
	var idx bytes.Buffer
	idx.Grow(8 + 256*4 + n*28 + 40)
	idx.Write([]byte{0xff, 't', 'O', 'c', 0, 0, 0, 2})
	var fanout [256]uint32
	for i := range n {
		h, _, _ := entry(i)
		fanout[h[0]]++
	}
	var total uint32
	for i := range fanout {
		total += fanout[i]
		idx.Write(binary.BigEndian.AppendUint32(nil, total))
	}
	for i := range n {
		h, _, _ := entry(i)
		idx.Write(h[:])
	}
	var word [4]byte
	for i := range n {
		_, crc, _ := entry(i)
		binary.BigEndian.PutUint32(word[:], crc)
		idx.Write(word[:])
	}
	for i := range n {
		_, _, off := entry(i)
		binary.BigEndian.PutUint32(word[:], off)
		idx.Write(word[:])
	}
	idx.Write(packSum[:])
	idxSum := sha1.Sum(idx.Bytes())
	idx.Write(idxSum[:])
	return idx.Bytes()
}

// encodePack encodes objs (duplicates dropped) as one packfile, in buf's
// memory when it is large enough; seal finishes it. An object with a base
// is stored as a delta against it when that is much smaller (trees
// rewritten along a batch); the rest whole.
//
// Entries are stored without compression (zlib's "stored" blocks, written
// straight into the pack): trees are mostly hashes, which do not compress
// (about 0.6 of their size at best), and for the small objects a write
// makes (a blob, a commit, a few deltas) building Huffman tables would cost
// more than everything else the write does. `git gc` compresses
// everything.
func encodePack(objs []object, buf []byte) (*encodedPack, error) {
	size := 0
	for i := range objs {
		size += objs[i].size() + 32
	}
	b := newPackBuilder(len(objs), size, buf)
	var hdr bytes.Buffer
	for i := range objs {
		o := &objs[i]
		if _, dup := b.offsets[o.hash]; dup {
			continue
		}
		hdr.Reset()
		if o.base >= 0 && o.depth <= maxDeltaDepth {
			if d := deltaOfTrees(objs[o.base].tree, o.tree); d != nil {
				writeObjectHeader(&hdr, packOfsDelta, len(d))
				writeDeltaOffset(&hdr, uint32(b.buf.Len())-b.offsets[objs[o.base].hash])
				b.addStored(o.hash, hdr.Bytes(), len(d), d)
				continue
			}
		}
		writeObjectHeader(&hdr, packTypes[o.typ], o.size())
		if o.tree.n > 0 {
			b.addStored(o.hash, hdr.Bytes(), o.tree.size, o.tree.parts()...)
		} else {
			b.addStored(o.hash, hdr.Bytes(), len(o.data), o.data)
		}
	}
	return b.finish(), nil
}

// addStored appends an entry: its header, then its content (size bytes,
// in parts) as a zlib stream of stored (uncompressed) deflate blocks.
func (b *packBuilder) addStored(h plumbing.Hash, header []byte, size int, parts ...[]byte) {
	off := b.buf.Len()
	b.buf.Write(header)
	b.buf.Write(appendStored(b.buf.AvailableBuffer(), size, parts...))
	b.offsets[h] = uint32(off)
	b.entries = append(b.entries, packEntry{hash: h, offset: uint32(off)})
}

// appendStored appends the content made of parts (size bytes in all) to
// dst as a zlib stream of stored (uncompressed) deflate blocks: what git's
// zlib inflates at memory speed, made without running a compressor.
func appendStored(dst []byte, size int, parts ...[]byte) []byte {
	dst = append(dst, 0x78, 0x01) // zlib header: deflate, 32K window, no dictionary
	sum := adler32.New()
	left := size
	part, at := 0, 0 // where in parts the next byte is
	for {
		n := min(left, 0xffff)
		final := byte(0)
		if n == left {
			final = 1
		}
		dst = append(dst, final, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		for n > 0 {
			for at == len(parts[part]) {
				part, at = part+1, 0
			}
			k := min(n, len(parts[part])-at)
			piece := parts[part][at : at+k]
			dst = append(dst, piece...)
			sum.Write(piece)
			at += k
			n -= k
			left -= k
		}
		if final == 1 {
			break
		}
	}
	return binary.BigEndian.AppendUint32(dst, sum.Sum32())
}

// writeDeltaOffset writes how far back an OFS_DELTA entry's base starts,
// in the pack format's encoding (big-endian 7-bit groups, each but the
// last with its high bit set and one added).
func writeDeltaOffset(w *bytes.Buffer, off uint32) {
	var buf [8]byte
	i := len(buf) - 1
	buf[i] = byte(off & 0x7f)
	for off >>= 7; off != 0; off >>= 7 {
		off--
		i--
		buf[i] = 0x80 | byte(off&0x7f)
	}
	w.Write(buf[i:])
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

// stage writes the pack and its index to fsynced temporary files of the
// git directory (from temps, which may be nil), the two in parallel;
// publish moves them into the pack directory.
func (p *encodedPack) stage(gitDir string, temps *tempFiles) (*stagedPack, error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	sp := &stagedPack{dir: dir, name: p.name}
	var idxErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sp.tmpIndex, idxErr = writeTemp(temps, gitDir, p.idx)
	}()
	var packErr error
	sp.tmpPack, packErr = writeTemp(temps, gitDir, p.pack)
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

// publish renames the index and then the pack into place and fsyncs the
// directory. In that order a crash in between leaves an index without its
// pack, which git and go-git skip (git lists packs by their index and
// skips one whose pack is missing; go-git lists the .pack files), rather
// than a pack without its index, which a start could not tell from a
// copy that lost its index (see cleanStale).
func (sp *stagedPack) publish() error {
	if err := os.Rename(sp.tmpIndex, filepath.Join(sp.dir, sp.name+".idx")); err != nil {
		sp.discard()
		return fmt.Errorf("publish %s: %w", sp.name, err)
	}
	if err := os.Rename(sp.tmpPack, filepath.Join(sp.dir, sp.name+".pack")); err != nil {
		os.Remove(filepath.Join(sp.dir, sp.name+".idx"))
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

// writeTemp writes data to a new fsynced, read-only temporary file in dir,
// taken from temps when it has one ready (temps may be nil), and returns
// its path.
func writeTemp(temps *tempFiles, dir string, data []byte) (string, error) {
	f, err := temps.create(dir)
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
			if err := syncRange(f, int64(off), int64(end-off)); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncRange writes a range of f back to disk and waits for it.
func syncRange(f *os.File, off, n int64) error {
	flags := unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, flags); err != nil && err != unix.ENOSYS {
		return err
	}
	return nil
}

package gitstore

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Compaction. Every batch is one small pack, so packs pile up quickly; the
// more packs, the more indexes a lookup searches. The housekeeper merges the
// packs this process wrote into one, copying their entries byte for byte
// except the whole trees, which become deltas (the committer's hints, or
// against an earlier version of the same folder found in the merge): the
// cost is the size of the packs merged, not of the repository. Packs
// written by others (a push, git gc) are left to git.

// ownPacks lists the packs this process wrote and has not merged yet.
type ownPacks struct {
	mu    sync.Mutex
	names []string
}

func (o *ownPacks) add(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names = append(o.names, name)
}

func (o *ownPacks) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.names)
}

func (o *ownPacks) snapshot() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.names)
}

// forget drops names from the list.
func (o *ownPacks) forget(names []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names = slices.DeleteFunc(o.names, func(n string) bool { return slices.Contains(names, n) })
}

// replace drops merged and records the pack that holds their objects now,
// where the oldest of them was: the list stays in the order the objects
// were written.
func (o *ownPacks) replace(merged []string, into string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at := len(o.names)
	for i, n := range o.names {
		if slices.Contains(merged, n) {
			at = min(at, i)
		}
	}
	o.names = slices.DeleteFunc(o.names, func(n string) bool { return slices.Contains(merged, n) })
	o.names = slices.Insert(o.names, min(at, len(o.names)), into)
}

// maxMergedPack bounds a merged pack: pack indexes of version 2 need a
// table of large offsets past 2 GiB, which merges do not write.
const maxMergedPack = 1 << 30

// maxMergedObjects bounds the objects of a merged pack: a merge keeps
// about 120 bytes per object in memory (the sources' indexes, the new
// index, the map that drops duplicates), so about 30 MiB at most. A long
// run at full speed thus leaves a pack per 50,000 writes or so; `git gc`
// makes them one.
const maxMergedObjects = 1 << 18

// pickMerge chooses which of the packs to merge, geometrically: the
// smallest ones, and a bigger one only once the smaller ones hold half as
// many objects as it does. So each object is copied O(log n) times over a
// long run, not on every merge. (Objects, not bytes: a merge shrinks batch
// packs about tenfold, so by bytes a merged pack would be copied again on
// nearly every merge.)
func pickMerge(gitDir string, names []string) []string {
	type sized struct {
		name    string
		size    int64
		objects int64
	}
	var packs []sized
	dir := filepath.Join(gitDir, "objects", "pack")
	for _, n := range names {
		pack, perr := os.Stat(filepath.Join(dir, n+".pack"))
		idx, ierr := os.Stat(filepath.Join(dir, n+".idx"))
		if perr == nil && ierr == nil {
			packs = append(packs, sized{n, pack.Size(), idxObjects(idx.Size())})
		}
	}
	slices.SortFunc(packs, func(a, b sized) int { return int(a.objects - b.objects) })
	var pick []string
	var sum, objects int64
	for i, p := range packs {
		if (i >= 2 && p.objects > 2*objects) || sum+p.size > maxMergedPack || objects+p.objects > maxMergedObjects {
			break
		}
		pick = append(pick, p.name)
		sum += p.size
		objects += p.objects
	}
	return pick
}

// mergePacks streams every object of the given packs (packs gitstore
// wrote: whole objects and OFS_DELTA entries) into one new pack, byte for
// byte except for the base offsets of deltas, which are recomputed, and
// publishes it durably. Memory stays proportional to the number of
// objects, not to their size. The caller then removes the merged packs
// with removePacks. A paced merge sleeps as long as it works (see pacer).
func mergePacks(gitDir string, names []string, paced bool, hints *deltaHints) (string, error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	// First the objects are listed (the pack's header, which comes first,
	// counts them). The indexes are read again to copy, so only one
	// source's entries are in memory at a time.
	total := 0
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(dir, name+".idx")); err == nil {
			total += int(idxObjects(fi.Size()))
		}
	}
	all := make([]plumbing.Hash, 0, total)
	for _, name := range names {
		idx, n, err := readIndexFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("merge %s: %w", name, err)
		}
		for j := range n {
			all = append(all, plumbing.Hash(idx[idxHeader+j*20:]))
		}
	}
	merged := newMergedSet(all)
	out, err := createPackStream(gitDir)
	if err != nil {
		return "", err
	}
	defer out.discard()
	if paced {
		out.pacer.slice = paceSlice
	}
	out.write(packHeader(len(merged.hashes)))
	bases := newTreeBases()
	bases.hints = hints
	r := bufio.NewReaderSize(nil, 64<<10) // one for every source
	var buf []byte                        // an entry's bytes, for every source
	for _, name := range names {
		stem := filepath.Join(dir, name)
		src, err := readIndex(stem)
		if err == nil {
			err = copyPack(out, r, &buf, stem, src, merged, bases)
		}
		// Hints are made for the first merge of a batch pack only.
		hints.forget(src)
		if err != nil {
			return "", fmt.Errorf("merge %s: %w", name, err)
		}
	}
	if i := slices.Index(merged.offs, notWritten); i >= 0 {
		return "", fmt.Errorf("merge: object %s was listed but not copied", merged.hashes[i])
	}
	sum, err := out.finish()
	if err != nil {
		return "", err
	}
	name := "pack-" + plumbing.Hash(sum).String()
	staged := &stagedPack{dir: dir, name: name, tmpPack: out.tmp}
	out.tmp = ""
	if staged.tmpIndex, err = writeTemp(nil, gitDir, merged.index(sum)); err != nil {
		staged.discard()
		return "", err
	}
	if err := staged.publish(); err != nil {
		return "", err
	}
	return name, nil
}

// pacer spreads a merge's CPU over time: after every slice of work it
// sleeps as long as it worked, so a merge takes at most half a core and
// the committer and the writers keep the rest. Unpaced merges burst on a
// whole core for a second or two, and at 1,000 writes/s that doubled the
// writes' p99 latency (BENCHMARKS.md).
type pacer struct {
	slice time.Duration // 0: no pacing
	began time.Time
	start time.Time // of the merge's writing, for the bandwidth cap
}

// mergeBandwidth caps how fast a paced merge writes its pack: written in
// one go, tens of megabytes held up the committer's fsyncs behind them.
const mergeBandwidth = 32 << 20 // bytes per second

// written sleeps until n bytes written are within mergeBandwidth.
func (p *pacer) written(n uint32) {
	if p.slice == 0 {
		return
	}
	if p.start.IsZero() {
		p.start = time.Now()
		return
	}
	due := time.Duration(float64(n) / mergeBandwidth * float64(time.Second))
	if ahead := due - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead)
	}
}

// paceSlice is how long a paced merge works before it pauses.
const paceSlice = 2 * time.Millisecond

func (p *pacer) pace() {
	if p.slice == 0 {
		return
	}
	now := time.Now()
	if p.began.IsZero() {
		p.began = now
		return
	}
	if worked := now.Sub(p.began); worked >= p.slice {
		time.Sleep(worked)
		p.began = time.Now()
	}
}

// mergedSet is every object of a merge, sorted by id, with its offset in
// the merged pack and its entry's CRC once it is copied: 28 bytes an
// object, and already in the order of the pack's index.
type mergedSet struct {
	hashes []plumbing.Hash
	offs   []uint32 // notWritten until copied
	crcs   []uint32
}

// notWritten is the offset of an object not copied yet.
const notWritten = ^uint32(0)

// newMergedSet makes the set of the ids in all (duplicates allowed; all
// is reused).
func newMergedSet(all []plumbing.Hash) *mergedSet {
	slices.SortFunc(all, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
	all = slices.Clip(slices.Compact(all))
	offs := make([]uint32, len(all))
	for i := range offs {
		offs[i] = notWritten
	}
	return &mergedSet{hashes: all, offs: offs, crcs: make([]uint32, len(all))}
}

// find returns h's place in the set.
func (m *mergedSet) find(h plumbing.Hash) (int, bool) {
	return slices.BinarySearchFunc(m.hashes, h, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
}

// offset returns where h was copied to, and whether it was.
func (m *mergedSet) offset(h plumbing.Hash) (uint32, bool) {
	i, ok := m.find(h)
	if !ok || m.offs[i] == notWritten {
		return 0, false
	}
	return m.offs[i], true
}

// index makes the merged pack's index.
func (m *mergedSet) index(packSum [20]byte) []byte {
	return indexOf(len(m.hashes), func(i int) (plumbing.Hash, uint32, uint32) {
		return m.hashes[i], m.crcs[i], m.offs[i]
	}, packSum)
}

// copyPack appends the entries of the pack at stem to out, skipping
// objects already merged (whose offsets its deltas then use), and records
// where each went in merged. Whole trees become deltas against an earlier
// version of the same folder when bases has one. The pack's checksum is
// checked as it is read: a merge never copies a pack changed on disk into
// one whose checksum is right.
func copyPack(out *packStream, r *bufio.Reader, bufp *[]byte, stem string, entries []packEntry, merged *mergedSet, bases *treeBases) error {
	f, err := os.Open(stem + ".pack")
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < 32 {
		return fmt.Errorf("%s.pack is damaged: cut short (%d bytes)", filepath.Base(stem), fi.Size())
	}
	end := uint32(fi.Size() - 20)
	sum := sha1.New()
	r.Reset(f)
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	sum.Write(hdr[:])
	moved := make([]uint32, len(entries)) // entries[i] is at moved[i] in out
	buf := *bufp
	defer func() { *bufp = buf }()
	var rewritten bytes.Buffer
	for i, e := range entries {
		next := end
		if i+1 < len(entries) {
			next = entries[i+1].offset
		}
		if e.offset < 12 || next <= e.offset || next > end || (i == 0 && e.offset != 12) {
			return fmt.Errorf("pack entry offsets out of range")
		}
		out.pacer.pace()
		buf = slices.Grow(buf[:0], int(next-e.offset))[:next-e.offset]
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		sum.Write(buf)
		at, listed := merged.find(e.hash)
		if !listed {
			return fmt.Errorf("object %s was not listed", e.hash)
		}
		if merged.offs[at] != notWritten {
			moved[i] = merged.offs[at] // a duplicate
			continue
		}
		raw := buf
		typ, size, hdr := entrySize(buf)
		switch typ {
		case packCommit, packBlob, packTag:
		case packTree:
			if d := bases.hinted(e.hash, out.off, merged); d != nil {
				raw = d
				break
			}
			delta, err := bases.add(out.off, buf[hdr:], size)
			if err != nil {
				return fmt.Errorf("tree %s: %w", e.hash, err)
			}
			if delta != nil {
				raw = delta
			}
		case packOfsDelta:
			rel, n := readDeltaOffset(buf[hdr:])
			var bi int
			found := n > 0 && rel > 0 && rel <= e.offset
			if found {
				bi, found = slices.BinarySearchFunc(entries[:i], e.offset-rel, func(x packEntry, off uint32) int { return cmp.Compare(x.offset, off) })
			}
			if !found {
				return fmt.Errorf("delta %s: base not found", e.hash)
			}
			base := moved[bi]
			bases.chain(out.off, base)
			rewritten.Reset()
			rewritten.Write(buf[:hdr])
			writeDeltaOffset(&rewritten, out.off-base)
			rewritten.Write(buf[hdr+n:])
			raw = rewritten.Bytes()
		default:
			return fmt.Errorf("pack entry %s has type %d (only whole objects and OFS_DELTA are merged)", e.hash, typ)
		}
		moved[i] = out.off
		merged.offs[at], merged.crcs[at] = out.off, crc32.ChecksumIEEE(raw)
		out.write(raw)
	}
	var trailer [20]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return err
	}
	if !bytes.Equal(sum.Sum(nil), trailer[:]) {
		return fmt.Errorf("%s.pack is damaged: it fails its checksum (cut short, or changed on disk)", filepath.Base(stem))
	}
	return out.err
}

// entryHeader reads a pack entry's type and returns the length of its
// type-and-size header.
func entryHeader(b []byte) (typ byte, n int) {
	typ, _, n = entrySize(b)
	return typ, n
}

// entrySize decodes an entry header: the type, the size of the object (or
// delta) it holds uncompressed, and the header's length.
func entrySize(b []byte) (typ byte, size uint64, n int) {
	if len(b) == 0 {
		return 0, 0, 0
	}
	typ = (b[0] >> 4) & 7
	size = uint64(b[0] & 0x0f)
	shift := 4
	n = 1
	for c := b[0]; c&0x80 != 0 && n < len(b) && shift < 64; n++ {
		c = b[n]
		size |= uint64(c&0x7f) << shift
		shift += 7
	}
	return typ, size, n
}

// readDeltaOffset decodes an OFS_DELTA base offset; n is 0 when b is
// truncated.
func readDeltaOffset(b []byte) (off uint32, n int) {
	for n < len(b) && n < 5 {
		c := b[n]
		n++
		if n > 1 {
			off++
		}
		off = off<<7 | uint32(c&0x7f)
		if c&0x80 == 0 {
			return off, n
		}
	}
	return 0, 0
}

// idxHeader is the size of a version-2 pack index's header and fan-out.
const idxHeader = 8 + 256*4

// idxObjects is how many objects a version-2 pack index of size bytes
// lists (without large offsets): header and fan-out, 28 bytes per object
// (id, CRC, offset), the two checksums.
func idxObjects(size int64) int64 { return max(0, (size-idxHeader-40)/28) }

// readIndexFile reads a version-2 pack index without large offsets and
// returns it with its number of objects.
func readIndexFile(stem string) ([]byte, int, error) {
	idx, err := os.ReadFile(stem + ".idx")
	if err != nil {
		return nil, 0, err
	}
	if len(idx) < idxHeader+40 || !bytes.Equal(idx[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return nil, 0, fmt.Errorf("not a version-2 pack index")
	}
	n := int(binary.BigEndian.Uint32(idx[8+255*4:]))
	if len(idx) != idxHeader+n*(20+4+4)+40 {
		return nil, 0, fmt.Errorf("pack index has large offsets or a bad size")
	}
	return idx, n, nil
}

// readIndex reads the entries of a version-2 pack index (without large
// offsets), sorted by offset; their CRCs are left out (a merge computes
// them for what it writes).
func readIndex(stem string) ([]packEntry, error) {
	idx, n, err := readIndexFile(stem)
	if err != nil {
		return nil, err
	}
	entries := make([]packEntry, n)
	for i := range n {
		copy(entries[i].hash[:], idx[idxHeader+i*20:])
		entries[i].offset = binary.BigEndian.Uint32(idx[idxHeader+n*24+i*4:])
	}
	slices.SortFunc(entries, func(x, y packEntry) int { return int(x.offset) - int(y.offset) })
	return entries, nil
}

// packStream writes a pack to a temporary file as it is made, hashing it
// and flushing it to disk chunk by chunk (see writeTrickle).
type packStream struct {
	pacer  pacer
	f      *os.File
	tmp    string
	w      *bufio.Writer
	sum    hash.Hash
	off    uint32
	synced uint32
	err    error
}

func createPackStream(dir string) (*packStream, error) {
	f, err := os.CreateTemp(dir, tmpPackPrefix)
	if err != nil {
		return nil, fmt.Errorf("write pack: %w", err)
	}
	return &packStream{f: f, tmp: f.Name(), w: bufio.NewWriterSize(f, 256<<10), sum: sha1.New()}, nil
}

func (p *packStream) write(b []byte) {
	if p.err != nil {
		return
	}
	p.sum.Write(b)
	p.off += uint32(len(b))
	if _, p.err = p.w.Write(b); p.err == nil && p.off-p.synced >= trickleChunk {
		if p.err = p.w.Flush(); p.err == nil {
			p.err = syncRange(p.f, int64(p.synced), int64(p.off-p.synced))
			p.synced = p.off
			p.pacer.written(p.off)
		}
	}
}

// finish writes the trailing checksum, fsyncs and closes the file.
func (p *packStream) finish() ([20]byte, error) {
	var sum [20]byte
	p.sum.Sum(sum[:0])
	if p.err == nil {
		_, p.err = p.w.Write(sum[:])
	}
	if p.err == nil {
		p.err = p.w.Flush()
	}
	if p.err == nil {
		p.err = p.f.Chmod(0o444)
	}
	if p.err == nil {
		p.err = p.f.Sync()
	}
	if cerr := p.f.Close(); p.err == nil {
		p.err = cerr
	}
	p.f = nil
	if p.err != nil {
		return sum, fmt.Errorf("write pack: %w", p.err)
	}
	return sum, nil
}

// discard removes the temporary file unless it was handed on.
func (p *packStream) discard() {
	if p.f != nil {
		p.f.Close()
	}
	if p.tmp != "" {
		os.Remove(p.tmp)
	}
}

// removePacks deletes merged packs, except keep (their objects' new pack).
// The pack goes first and its index after: a crash in between leaves an
// index without a pack, which git and go-git both skip (go-git, which
// lists packs by their .pack files, fails on a pack without its index).
// Nothing is fsynced: a removal a crash undoes leaves objects stored twice,
// which is harmless. The files are deleted, never emptied or reused (see
// tempFiles): a clone or a running git may share them.
func removePacks(gitDir string, names []string, keep string) {
	dir := filepath.Join(gitDir, "objects", "pack")
	for _, name := range names {
		if name == keep {
			continue
		}
		for _, ext := range []string{".pack", ".idx"} {
			os.Remove(filepath.Join(dir, name+ext))
		}
	}
}

// adoptablePackSize bounds the packs found at start that the housekeeper
// may merge: small packs without deltas, as an earlier run left them.
const adoptablePackSize = 1 << 20

// adoptPacks finds the small, delta-free packs a previous run wrote and
// lists them for merging; damaged packs left out (left) are not.
func (o *ownPacks) adopt(gitDir string, left map[string]string) {
	idxs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.idx"))
	for _, idx := range idxs {
		stem := idx[:len(idx)-len(".idx")]
		if _, out := left[filepath.Base(stem)]; out {
			continue
		}
		fi, err := os.Stat(stem + ".pack")
		if err != nil || fi.Size() > adoptablePackSize {
			continue
		}
		if mergeable(stem) {
			o.add(filepath.Base(stem))
		}
	}
}

// mergeable reports whether the pack at stem holds only entries a merge
// can copy: whole objects and OFS_DELTA entries.
func mergeable(stem string) bool {
	entries, err := readIndex(stem)
	if err != nil {
		return false
	}
	pack, err := os.ReadFile(stem + ".pack")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if int(e.offset) >= len(pack) {
			return false
		}
		switch t, _ := entryHeader(pack[e.offset:]); t {
		case packCommit, packTree, packBlob, packTag, packOfsDelta:
		default:
			return false
		}
	}
	return true
}

// maxTreeBaseBytes bounds the tree versions a merge keeps as delta bases
// (up to two per folder): enough for a few hundred folders of a few
// hundred entries. Fewer made merges forget the bases of a 100-cluster
// repository every few trees and store most trees whole.
const maxTreeBaseBytes = 16 << 20

// mergeDeltaDepth bounds the delta chains a merge makes of whole trees
// (deltas a batch made may hang off them, up to maxDeltaDepth more).
const mergeDeltaDepth = 25

// treeBases finds, for a whole tree a merge copies, an earlier version of
// the same folder in the merged pack to store it as a delta against. A
// folder is recognised by its first entry (its name, and its hash when it
// did not change): versions of one folder share it, other folders rarely
// do, and a wrong guess only costs a delta not made.
type treeBases struct {
	byFirst map[string][]treeBase // first entry name → latest versions, newest first
	depth   map[uint32]int        // output offset of a tree → its delta chain depth
	held    int                   // bytes of tree data in byFirst
	zr      io.ReadCloser
	spare   [][]byte // data of bases dropped, for the next trees inflated

	hints *deltaHints // deltas the committer made (nil: none)
}

type treeBase struct {
	first []byte // the first entry, hash included
	data  []byte
	off   uint32
	depth int
}

func newTreeBases() *treeBases {
	return &treeBases{byFirst: map[string][]treeBase{}, depth: map[uint32]int{}}
}

// hinted returns the entry for the whole tree h, about to be written at
// off, as the delta the committer left for it, when its base is already
// in the merged pack (merged) and the chain stays short; nil otherwise.
func (tb *treeBases) hinted(h plumbing.Hash, off uint32, merged *mergedSet) []byte {
	hint, ok := tb.hints.take(h)
	if !ok {
		return nil
	}
	baseOff, in := merged.offset(hint.base)
	depth, known := tb.depth[baseOff]
	if !in || !known || depth+1 >= mergeDeltaDepth {
		return nil
	}
	tb.depth[off] = depth + 1
	var raw bytes.Buffer
	writeObjectHeader(&raw, packOfsDelta, len(hint.delta))
	writeDeltaOffset(&raw, off-baseOff)
	return appendStored(raw.Bytes(), len(hint.delta), hint.delta)
}

// chain records that the entry at off is a delta against the one at base.
func (tb *treeBases) chain(off, base uint32) {
	if d, ok := tb.depth[base]; ok {
		tb.depth[off] = d + 1
	}
}

// add takes the whole tree whose compressed content is z, about to be
// written at off, and returns it re-encoded as an OFS_DELTA entry, or nil
// to copy it as it is.
func (tb *treeBases) add(off uint32, z []byte, size uint64) ([]byte, error) {
	var err error
	if tb.zr == nil {
		tb.zr, err = zlib.NewReader(bytes.NewReader(z))
	} else {
		err = tb.zr.(zlib.Resetter).Reset(bytes.NewReader(z), nil)
	}
	if err != nil {
		return nil, err
	}
	if size > uint64(len(z))*1032+64 { // deflate expands at most 1032:1
		return nil, fmt.Errorf("tree of %d bytes in %d compressed: corrupt header", size, len(z))
	}
	data := tb.buffer(int(size))
	if _, err := io.ReadFull(tb.zr, data); err != nil {
		tb.drop(data)
		return nil, err
	}
	first := firstEntry(data)
	if first == nil {
		tb.depth[off] = 0
		tb.drop(data)
		return nil, nil
	}
	name := string(first[:len(first)-20])
	cands := tb.byFirst[name]
	best, delta := -1, []byte(nil)
	for i, c := range cands {
		if c.depth >= mergeDeltaDepth {
			continue
		}
		if d := deltaOf(c.data, data); d != nil && (delta == nil || len(d) < len(delta)) {
			best, delta = i, d
			if bytes.Equal(c.first, first) {
				break
			}
		}
	}
	self := treeBase{first: first, data: data, off: off}
	if best < 0 {
		tb.depth[off] = 0
		keep := cands[:min(len(cands), 1)]
		for _, c := range cands[len(keep):] {
			tb.held -= len(c.data)
			tb.drop(c.data)
		}
		if tb.held+len(data) > maxTreeBaseBytes {
			// Bounded memory: forget, and find bases anew.
			for _, cs := range tb.byFirst {
				for _, c := range cs {
					tb.drop(c.data)
				}
			}
			clear(tb.byFirst)
			tb.held, keep = 0, nil
		}
		tb.byFirst[name] = append([]treeBase{self}, keep...)
		tb.held += len(data)
		return nil, nil
	}
	base := cands[best]
	self.depth = base.depth + 1
	tb.depth[off] = self.depth
	tb.held += len(data) - len(base.data)
	tb.drop(base.data)
	cands[best] = self
	var raw bytes.Buffer
	writeObjectHeader(&raw, packOfsDelta, len(delta))
	writeDeltaOffset(&raw, off-base.off)
	return appendStored(raw.Bytes(), len(delta), delta), nil
}

// buffer returns n bytes to inflate a tree into: a dropped base's memory
// when one is large enough.
func (tb *treeBases) buffer(n int) []byte {
	for i := len(tb.spare) - 1; i >= 0; i-- {
		if b := tb.spare[i]; cap(b) >= n {
			tb.spare = slices.Delete(tb.spare, i, i+1)
			return b[:n]
		}
	}
	// Room to grow: the next versions of a folder are often larger.
	return make([]byte, n, n+n/8)
}

// maxSpareBases bounds the dropped bases kept for reuse.
const maxSpareBases = 64

// drop keeps the memory of a base no longer used (nothing else refers to
// it: a base's data is only read while it is a base) for buffer.
func (tb *treeBases) drop(b []byte) {
	if len(tb.spare) < maxSpareBases {
		tb.spare = append(tb.spare, b[:0])
	}
}

// firstEntry returns the first entry of an encoded tree, hash included.
func firstEntry(data []byte) []byte {
	nul := bytes.IndexByte(data, 0)
	if nul < 0 || len(data) < nul+21 {
		return nil
	}
	return data[:nul+21]
}

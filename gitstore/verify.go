package gitstore

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Damaged repositories. A pack ends with the SHA-1 of everything before
// it, and is named after it; its index ends with its own SHA-1 and names
// the pack's. go-git checks the index's checksum when it loads one (and
// then fails every lookup when one index is damaged), but never the
// pack's, and it does not hash the objects it reads. So a pack cut short
// or changed on disk by someone else (a crashed `git gc`, a disk error, a
// bad copy) made the store fail with "object not found", or serve content
// that is not the object's: a flipped byte in an uncompressed blob, or in
// a delta base that every version of a file is stored against. Hence:
//
//   - Open checks every pack and its index completely (checkPacks):
//     both checksums, that they belong together, and the offsets. A
//     damaged pack refuses the start with a *DamagedError that names the
//     file, says what is wrong and what to do, unless every object its
//     index lists is intact elsewhere (another intact pack, or a loose
//     object that hashes right): then the store leaves it out of what it
//     reads and logs a warning naming it. Packs written by a crash of
//     another tool between its two renames (a .pack without its .idx) are
//     left out, as git leaves them out, and named in a warning.
//   - every object read is hashed and must be the object asked for
//     (objectReader.read); a read that fails says which pack holds the
//     object and what is wrong with it. An index damaged while the store
//     runs is left out rather than failing every lookup.
//   - a merge checks the checksum of every pack it copies.

// ErrDamaged matches (errors.Is) the errors that say a file of the
// repository is damaged.
var ErrDamaged = errors.New("damaged repository")

// DamagedError says that a repository is damaged: which file, what is
// wrong with it, and what to do. At Open it refuses the start; at run time
// it is the error of a read that found a damaged object.
type DamagedError struct {
	Dir string
	// Object, when not zero, is the object a read failed on (of type
	// Type), and Cause what went wrong reading it.
	Object plumbing.Hash
	Type   plumbing.ObjectType
	Cause  string
	// File is the damaged file, relative to Dir; Problem what is wrong
	// with it.
	File, Problem string
	// Missing is how many objects of the damaged pack are found nowhere
	// else (-1: unknown, its index is damaged).
	Missing int
	// Also lists further damaged files, with their problems.
	Also []string
	// Mirror: the repository is the store's mirror of a remote.
	Mirror bool
	// opening: the error refuses a start.
	opening bool
	// pack is the damaged pack's name (pack-<sum>), for the hints.
	pack string
	// idxOnly: only the index is damaged, the pack is intact; noIndex:
	// the pack has no index.
	idxOnly, noIndex bool
}

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func (e *DamagedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "repository %s is damaged: ", e.Dir)
	if !e.Object.IsZero() {
		fmt.Fprintf(&b, "%s %s cannot be read (%s)", e.Type, e.Object, e.Cause)
		switch {
		case e.noIndex:
			fmt.Fprintf(&b, ": %s %s", e.File, e.Problem)
		case e.File != "":
			fmt.Fprintf(&b, ": %s, which holds it, %s", e.File, e.Problem)
		}
	} else {
		fmt.Fprintf(&b, "%s %s", e.File, e.Problem)
		switch {
		case e.Missing > 0:
			fmt.Fprintf(&b, ", and %d of its objects are found nowhere else", e.Missing)
		case e.Missing < 0:
			b.WriteString(", so the objects of its pack cannot be found")
		}
	}
	if len(e.Also) > 0 {
		fmt.Fprintf(&b, " (also damaged: %s)", strings.Join(e.Also, "; "))
	}
	if e.opening {
		b.WriteString("; the store does not start on a damaged repository, so that it never serves wrong data")
	}
	b.WriteString(". ")
	switch {
	case e.Mirror:
		fmt.Fprintf(&b, "This repository is the store's mirror of its remote: move %s away and start again to fetch it anew", e.Dir)
	case e.idxOnly:
		fmt.Fprintf(&b, "The pack itself is intact: remove %s and run `git -C %s index-pack objects/pack/%s.pack`, which writes it again", e.File, e.Dir, e.pack)
	case e.noIndex:
		fmt.Fprintf(&b, "If that pack holds it, `git -C %s index-pack objects/pack/%s.pack` writes its index (and fails if the pack is damaged); otherwise check the repository with `git -C %s fsck --full` and restore it from the forge or a backup", e.Dir, e.pack, e.Dir)
	default:
		fmt.Fprintf(&b, "Check it with `git -C %s fsck --full`, then restore the repository (or that pack) from the forge or a backup, or run `git repack -a -d` in an intact copy and copy that", e.Dir)
	}
	if e.opening {
		b.WriteString("; then start again")
	}
	return b.String()
}

// packCheck is what checking a pack and its index found.
type packCheck struct {
	name    string // pack-<sum>
	size    int64  // of the .pack
	file    string // the damaged file, relative to the repository ("" when intact)
	problem string
	idxOK   bool // the index is intact: it lists the pack's objects
	packOK  bool // the pack's content matches its checksum
}

func (c packCheck) intact() bool { return c.problem == "" }

// packDir is the pack folder of a repository.
func packDir(gitDir string) string { return filepath.Join(gitDir, "objects", "pack") }

// listPacks lists the pack folder: the packs that have both files, the
// .pack files without an index, and the indexes without a pack.
func listPacks(gitDir string) (pairs, noIndex, noPack []string) {
	entries, _ := os.ReadDir(packDir(gitDir))
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "pack-") {
			continue
		}
		switch stem, ext := strings.TrimSuffix(n, filepath.Ext(n)), filepath.Ext(n); {
		case ext == ".pack" && names[stem+".idx"]:
			pairs = append(pairs, stem)
		case ext == ".pack":
			noIndex = append(noIndex, stem)
		case ext == ".idx" && !names[stem+".pack"]:
			noPack = append(noPack, stem)
		}
	}
	return pairs, noIndex, noPack
}

// checkPacks checks the given packs (names, pack-<sum>) of the
// repository, a few in parallel, the largest first. Packs removed
// meanwhile (a merge, git gc) are left out.
func checkPacks(gitDir string, names []string) []packCheck {
	type job struct {
		name string
		size int64
	}
	jobs := make([]job, 0, len(names))
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(packDir(gitDir), n+".pack"))
		if err == nil {
			jobs = append(jobs, job{n, fi.Size()})
		}
	}
	slices.SortFunc(jobs, func(a, b job) int { return cmp.Compare(b.size, a.size) })
	out := make([]packCheck, len(jobs))
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range min(len(jobs), max(1, runtime.GOMAXPROCS(0))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= len(jobs) {
					return
				}
				out[k] = checkPack(gitDir, jobs[k].name, buf)
			}
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(c packCheck) bool { return c.name == "" })
}

// checkPack checks a pack and its index completely: the index's checksum
// and layout, the pack's header and checksum, that the index names the
// pack (and the pack's file name its checksum, as go-git requires), that
// they count the same objects, and that every offset lies inside the
// pack. buf is scratch memory. A pack removed meanwhile gives a zero
// packCheck.
func checkPack(gitDir, name string, buf []byte) packCheck {
	c := packCheck{name: name}
	stem := filepath.Join(packDir(gitDir), name)
	idxFile, packFile := "objects/pack/"+name+".idx", "objects/pack/"+name+".pack"
	raw, err := os.ReadFile(stem + ".idx")
	if errors.Is(err, os.ErrNotExist) {
		return packCheck{}
	}
	var idx idxView
	if err != nil {
		c.file, c.problem = idxFile, "cannot be read: "+err.Error()
	} else if idx, err = parseIdx(raw); err != nil {
		c.file, c.problem = idxFile, err.Error()
	} else {
		c.idxOK = true
	}
	f, err := os.Open(stem + ".pack")
	if errors.Is(err, os.ErrNotExist) {
		return packCheck{}
	}
	fail := func(problem string) packCheck {
		if c.problem == "" {
			c.file, c.problem = packFile, problem
		} else {
			// Both damaged: the pack's problem matters more.
			c.file, c.problem = packFile, problem+" (and its index "+c.problem+")"
		}
		return c
	}
	if err != nil {
		return fail("cannot be read: " + err.Error())
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail("cannot be read: " + err.Error())
	}
	c.size = fi.Size()
	if c.size < 12+20 {
		if c.size == 0 {
			return fail("is empty (0 bytes)")
		}
		return fail(fmt.Sprintf("is cut short: %d bytes, less than any pack (32)", c.size))
	}
	sum := sha1.New()
	var hdr [12]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return fail("cannot be read: " + err.Error())
	}
	sum.Write(hdr[:])
	if !bytes.Equal(hdr[:4], []byte("PACK")) || (hdr[7] != 2 && hdr[7] != 3) || !bytes.Equal(hdr[4:7], []byte{0, 0, 0}) {
		return fail("is not a pack file (its header is wrong)")
	}
	if _, err := io.CopyBuffer(sum, io.LimitReader(f, c.size-20-12), buf); err != nil {
		return fail("cannot be read: " + err.Error())
	}
	var trailer [20]byte
	if _, err := io.ReadFull(f, trailer[:]); err != nil {
		return fail("cannot be read: " + err.Error())
	}
	if !bytes.Equal(sum.Sum(nil), trailer[:]) {
		return fail(fmt.Sprintf("fails its checksum: its %d bytes do not hash to the SHA-1 at its end (cut short, or changed on disk)", c.size))
	}
	c.packOK = true
	if hex.EncodeToString(trailer[:]) != strings.TrimPrefix(name, "pack-") {
		return fail(fmt.Sprintf("is named %s but its checksum is %x: rename it and its index to pack-%x", name, trailer, trailer))
	}
	if !c.idxOK {
		return c
	}
	switch {
	case !bytes.Equal(idx.packSum(), trailer[:]):
		c.idxOK = false
		c.file, c.problem = idxFile, fmt.Sprintf("belongs to another pack (it names pack-%x)", idx.packSum())
	case int(binary.BigEndian.Uint32(hdr[8:])) != idx.n:
		return fail(fmt.Sprintf("holds %d objects but its index lists %d", binary.BigEndian.Uint32(hdr[8:]), idx.n))
	default:
		end := uint64(c.size - 20)
		for i := range idx.n {
			if off := idx.offset(i); off < 12 || off >= end {
				c.idxOK = false
				c.file, c.problem = idxFile, fmt.Sprintf("lists object %x at offset %d, outside its pack (%d bytes)", idx.id(i), off, c.size)
				break
			}
		}
	}
	return c
}

// idxView reads a version-2 pack index held in memory.
type idxView struct {
	b     []byte
	n     int
	large int // entries in the large-offset table
}

const idxMagic = "\xfftOc\x00\x00\x00\x02"

// parseIdx checks a version-2 pack index completely (layout, fan-out,
// checksum) and returns a view of it.
func parseIdx(b []byte) (idxView, error) {
	if len(b) == 0 {
		return idxView{}, errors.New("is empty (0 bytes)")
	}
	if len(b) < idxHeader+40 {
		return idxView{}, fmt.Errorf("is cut short: %d bytes, less than any pack index (%d)", len(b), idxHeader+40)
	}
	if string(b[:8]) != idxMagic {
		return idxView{}, errors.New("is not a version-2 pack index (its header is wrong)")
	}
	var prev uint32
	for i := range 256 {
		n := binary.BigEndian.Uint32(b[8+i*4:])
		if n < prev {
			return idxView{}, errors.New("is not a valid pack index (its fan-out table decreases)")
		}
		prev = n
	}
	v := idxView{b: b, n: int(prev)}
	small := idxHeader + v.n*28 + 40
	if len(b) < small || (len(b)-small)%8 != 0 {
		return idxView{}, fmt.Errorf("is cut short or overlong: %d bytes, not what an index of %d objects takes (%d, plus 8 per large offset)", len(b), v.n, small)
	}
	v.large = (len(b) - small) / 8
	if sum := sha1.Sum(b[:len(b)-20]); !bytes.Equal(sum[:], b[len(b)-20:]) {
		return idxView{}, errors.New("fails its checksum (cut short, or changed on disk)")
	}
	large := 0
	for i := range v.n {
		if binary.BigEndian.Uint32(b[idxHeader+v.n*24+i*4:])&0x80000000 != 0 {
			large++
		}
	}
	if large != v.large {
		return idxView{}, errors.New("is not a valid pack index (its large offsets do not add up)")
	}
	for i := 1; i < v.n; i++ {
		if bytes.Compare(v.id(i-1), v.id(i)) >= 0 {
			return idxView{}, errors.New("is not a valid pack index (its object ids are out of order)")
		}
	}
	return v, nil
}

func (v idxView) id(i int) []byte { return v.b[idxHeader+i*20 : idxHeader+i*20+20] }

func (v idxView) offset(i int) uint64 {
	o := binary.BigEndian.Uint32(v.b[idxHeader+v.n*24+i*4:])
	if o&0x80000000 == 0 {
		return uint64(o)
	}
	at := idxHeader + v.n*28 + int(o&0x7fffffff)*8
	if at+8 > len(v.b)-40 {
		return ^uint64(0)
	}
	return binary.BigEndian.Uint64(v.b[at:])
}

func (v idxView) packSum() []byte { return v.b[len(v.b)-40 : len(v.b)-20] }

// has reports whether the index lists h.
func (v idxView) has(h plumbing.Hash) bool {
	_, ok := v.find(h)
	return ok
}

// find returns the position of h in the index, and whether it is there.
func (v idxView) find(h plumbing.Hash) (int, bool) {
	lo := 0
	if h[0] > 0 {
		lo = int(binary.BigEndian.Uint32(v.b[8+(int(h[0])-1)*4:]))
	}
	hi := min(int(binary.BigEndian.Uint32(v.b[8+int(h[0])*4:])), v.n)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(v.id(m), h[:]); {
		case c == 0:
			return m, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return lo, false
}

// readIdx reads and checks the index of pack name.
func readIdx(gitDir, name string) (idxView, error) {
	b, err := os.ReadFile(filepath.Join(packDir(gitDir), name+".idx"))
	if err != nil {
		return idxView{}, err
	}
	return parseIdx(b)
}

// looseIntact reports whether h is stored as a loose object whose content
// hashes to h.
func looseIntact(gitDir string, h plumbing.Hash) bool {
	s := h.String()
	f, err := os.Open(filepath.Join(gitDir, "objects", s[:2], s[2:]))
	if err != nil {
		return false
	}
	defer f.Close()
	zr, err := zlib.NewReader(f)
	if err != nil {
		return false
	}
	defer zr.Close()
	sum := sha1.New()
	if _, err := io.Copy(sum, zr); err != nil {
		return false
	}
	return bytes.Equal(sum.Sum(nil), h[:])
}

// missingElsewhere counts the objects of pack name found neither in the
// packs of others nor as intact loose objects; -1 when its index cannot
// be read.
func missingElsewhere(gitDir, name string, others []idxView) int {
	v, err := readIdx(gitDir, name)
	if err != nil {
		return -1
	}
	missing := 0
	for i := range v.n {
		h := plumbing.Hash(v.id(i))
		if !slices.ContainsFunc(others, func(o idxView) bool { return o.has(h) }) && !looseIntact(gitDir, h) {
			missing++
		}
	}
	return missing
}

// verifyPacks checks every pack of the repository at Open. It returns the
// damaged packs whose objects are all intact elsewhere, with what is
// wrong with each, which the store then leaves out (each named in a
// warning), and the intact packs; or a *DamagedError when a damaged pack
// holds objects found nowhere else.
func verifyPacks(gitDir string, log *slog.Logger) (left map[string]string, checked []string, err error) {
	start := time.Now()
	pairs, _, _ := listPacks(gitDir)
	checks := checkPacks(gitDir, pairs)
	var total int64
	var damaged, intact []packCheck
	for _, c := range checks {
		total += c.size
		if c.intact() {
			intact = append(intact, c)
		} else {
			damaged = append(damaged, c)
		}
	}
	log.Info("packs checked", "packs", len(checks), "bytes", total, "damaged", len(damaged), "took", time.Since(start).Round(time.Millisecond))
	for _, c := range intact {
		checked = append(checked, c.name)
	}
	if len(damaged) == 0 {
		return nil, checked, nil
	}
	// The intact packs' indexes, to look the damaged packs' objects up.
	var others []idxView
	for _, c := range intact {
		if v, err := readIdx(gitDir, c.name); err == nil {
			others = append(others, v)
		}
	}
	left = map[string]string{}
	var refuse []*DamagedError
	for _, c := range damaged {
		e := &DamagedError{Dir: gitDir, File: c.file, Problem: c.problem, Missing: -1, opening: true, pack: c.name, idxOnly: c.packOK && !c.idxOK}
		if c.idxOK {
			e.Missing = missingElsewhere(gitDir, c.name, others)
		}
		if e.Missing == 0 {
			left[c.name] = c.file + " " + c.problem
			log.Warn("damaged pack left out: every object it holds is intact elsewhere; check the repository with git fsck and remove it",
				"file", c.file, "problem", c.problem)
			continue
		}
		refuse = append(refuse, e)
	}
	if len(refuse) == 0 {
		return left, checked, nil
	}
	// The pack whose objects are missing first, then the others.
	slices.SortStableFunc(refuse, func(a, b *DamagedError) int { return b.Missing - a.Missing })
	e := refuse[0]
	for _, o := range refuse[1:] {
		e.Also = append(e.Also, o.File+" "+o.Problem)
	}
	if len(refuse) > 1 {
		e.idxOnly = false
	}
	return nil, nil, e
}

package gitstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// Compaction. Every batch is one small pack, so packs pile up quickly; the
// more packs, the more indexes a lookup searches. The housekeeper merges the
// packs this process wrote into one, copying their entries byte for byte
// (no decompression, no delta search): the cost is the size of the packs
// merged, not of the repository. Packs written by others (a push, git gc)
// are left to git.

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

// replace drops merged and records the pack that holds their objects now.
func (o *ownPacks) replace(merged []string, into string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names = slices.DeleteFunc(o.names, func(n string) bool { return slices.Contains(merged, n) })
	o.names = append(o.names, into)
}

// pickMerge chooses which of the packs to merge, geometrically: the
// smallest ones, and a bigger one only once the smaller ones add up to half
// its size. So each object is copied O(log n) times over a long run, not on
// every merge.
func pickMerge(gitDir string, names []string) []string {
	type sized struct {
		name string
		size int64
	}
	var packs []sized
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(gitDir, "objects", "pack", n+".pack")); err == nil {
			packs = append(packs, sized{n, fi.Size()})
		}
	}
	slices.SortFunc(packs, func(a, b sized) int { return int(a.size - b.size) })
	var pick []string
	var sum int64
	for i, p := range packs {
		if i >= 2 && p.size > 2*sum {
			break
		}
		pick = append(pick, p.name)
		sum += p.size
	}
	return pick
}

// mergePacks writes one pack holding every object of the given packs
// (which must be packs without deltas, as gitstore writes them) and
// publishes it durably. The caller then removes the merged packs with
// removePacks.
func mergePacks(gitDir string, names []string) (string, error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	b := newPackBuilder(0)
	for _, name := range names {
		if err := copyEntries(b, filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("merge %s: %w", name, err)
		}
	}
	p := b.finish()
	staged, err := p.stage(gitDir)
	if err != nil {
		return "", err
	}
	if err := staged.publish(); err != nil {
		return "", err
	}
	return p.name, nil
}

// removePacks deletes merged packs, except keep (their objects' new pack).
func removePacks(gitDir string, names []string, keep string) error {
	dir := filepath.Join(gitDir, "objects", "pack")
	for _, name := range names {
		if name == keep {
			continue
		}
		// The index goes first: whoever still sees an index finds its pack.
		os.Remove(filepath.Join(dir, name+".idx"))
		os.Remove(filepath.Join(dir, name+".pack"))
	}
	return syncDir(dir)
}

// copyEntries adds every entry of the pack at stem to b.
func copyEntries(b *packBuilder, stem string) error {
	idx, err := os.ReadFile(stem + ".idx")
	if err != nil {
		return err
	}
	pack, err := os.ReadFile(stem + ".pack")
	if err != nil {
		return err
	}
	const header = 8 + 256*4
	if len(idx) < header+40 || !bytes.Equal(idx[:4], []byte{0xff, 't', 'O', 'c'}) || len(pack) < 32 {
		return fmt.Errorf("not a version-2 pack index")
	}
	n := int(binary.BigEndian.Uint32(idx[8+255*4:]))
	if len(idx) != header+n*(20+4+4)+40 {
		return fmt.Errorf("pack index has large offsets or a bad size")
	}
	type at struct {
		hash   plumbing.Hash
		offset int
	}
	entries := make([]at, n)
	for i := range n {
		copy(entries[i].hash[:], idx[header+i*20:])
		entries[i].offset = int(binary.BigEndian.Uint32(idx[header+n*24+i*4:]))
	}
	slices.SortFunc(entries, func(x, y at) int { return x.offset - y.offset })
	end := len(pack) - 20
	for i, e := range entries {
		next := end
		if i+1 < n {
			next = entries[i+1].offset
		}
		if e.offset < 12 || next > end || next <= e.offset {
			return fmt.Errorf("pack entry offsets out of range")
		}
		if t := (pack[e.offset] >> 4) & 7; t < 1 || t > 4 {
			return fmt.Errorf("pack holds a delta or unknown entry (type %d)", t)
		}
		b.addRaw(e.hash, pack[e.offset:next])
	}
	return nil
}

// adoptablePackSize bounds the packs found at start that the housekeeper
// may merge: small packs without deltas, as an earlier run left them.
const adoptablePackSize = 8 << 20

// adoptPacks finds the small, delta-free packs a previous run wrote and
// lists them for merging.
func (o *ownPacks) adopt(gitDir string) {
	idxs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.idx"))
	for _, idx := range idxs {
		stem := idx[:len(idx)-len(".idx")]
		fi, err := os.Stat(stem + ".pack")
		if err != nil || fi.Size() > adoptablePackSize {
			continue
		}
		if copyEntries(newPackBuilder(0), stem) == nil {
			o.add(filepath.Base(stem))
		}
	}
}

package gitstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// referenceTree encodes entries the plain way: sorted by Git's key (a
// directory's name with "/" appended), each entry encoded in turn.
func referenceTree(entries map[string]treeEntry) []byte {
	list := make([]treeEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	key := func(e treeEntry) string {
		if e.isTree() {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(list, func(a, b treeEntry) int { return strings.Compare(key(a), key(b)) })
	var b []byte
	for _, e := range list {
		b = appendEntry(b, e)
	}
	return b
}

// checkChunks fails unless t's chunks are consistent: none empty, each
// entry's offset right, first counting entries, n and size the totals,
// and no chunk of more than one entry above chunkMax.
func checkChunks(t *testing.T, step int, tr tree) {
	t.Helper()
	n, size := 0, 0
	for ci, c := range tr.chunks {
		if len(c.offs) == 0 || c.first != n || c.offs[0] != 0 {
			t.Fatalf("step %d: chunk %d: %d entries, first %d (want %d), offset %v", step, ci, len(c.offs), c.first, n, c.offs)
		}
		if len(c.data) > chunkMax && len(c.offs) > 1 {
			t.Fatalf("step %d: chunk %d holds %d bytes", step, ci, len(c.data))
		}
		dec, err := decodeTree(slices.Clone(c.data))
		if err != nil || dec.n != len(c.offs) {
			t.Fatalf("step %d: chunk %d is not whole entries: %v", step, ci, err)
		}
		for j := range c.offs {
			if dec.entry(j) != tr.entry(c.first+j) {
				t.Fatalf("step %d: chunk %d entry %d at the wrong offset", step, ci, j)
			}
		}
		n, size = n+len(c.offs), size+len(c.data)
	}
	if n != tr.n || size != tr.size {
		t.Fatalf("step %d: %d entries of %d bytes, tree says %d of %d", step, n, size, tr.n, tr.size)
	}
}

// TestTreeEditsMatchAFullEncoding applies random inserts, replacements and
// deletions to a tree, enough for its chunks to split, and checks after
// each that its bytes are what encoding the whole entry list gives, that
// its chunks are consistent, that it decodes back, that its hash and its
// delta against the version before are those of the plain bytes, and that
// the tree it was made from did not change. Names include the cases
// Git's order makes tricky: "a" and "a.b" as files and directories.
func TestTreeEditsMatchAFullEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "a.b", "a-b", "a0", "ab", "b", "web.yaml", "web", "api.yaml", "z"}
	for i := range 300 {
		names = append(names, fmt.Sprintf("deploy-%03d.yaml", i))
	}
	want := map[string]treeEntry{}
	var cur tree
	splits := 0
	for step := range 6000 {
		name := names[rng.IntN(len(names))]
		mode := uint32(modeBlob)
		if rng.IntN(3) == 0 {
			mode = modeTree
		}
		var h plumbing.Hash
		if rng.IntN(5) != 0 {
			h[0], h[19] = byte(step), byte(rng.IntN(256))
		}
		key := fmt.Sprintf("%s %o", name, mode)
		if h.IsZero() {
			delete(want, key)
		} else {
			want[key] = treeEntry{name: name, mode: mode, hash: h}
		}
		before := cur.bytes()
		next := cur.set(treeEntry{name: name, mode: mode, hash: h})
		if !bytes.Equal(cur.bytes(), before) {
			t.Fatalf("step %d: set changed the tree it was called on", step)
		}
		if len(next.chunks) > len(cur.chunks) {
			splits++
		}
		prev := cur
		cur = next
		got := cur.bytes()
		if ref := referenceTree(want); !bytes.Equal(got, ref) {
			t.Fatalf("step %d (%s %o %v): tree bytes differ from a full encoding\n got %q\nwant %q", step, name, mode, h.IsZero(), got, ref)
		}
		checkChunks(t, step, cur)
		dec, err := decodeTree(slices.Clone(got))
		if err != nil || dec.n != cur.n || !bytes.Equal(dec.bytes(), got) {
			t.Fatalf("step %d: decode: %v", step, err)
		}
		checkChunks(t, step, dec)
		if o := newTreeObject(cur); cur.n > 0 && o.hash != hashObject(plumbing.TreeObject, got) {
			t.Fatalf("step %d: hash of the chunks differs from the hash of the bytes", step)
		}
		if d, plain := deltaOfTrees(prev, cur), deltaOf(before, got); prev.n > 0 && cur.n > 0 && !bytes.Equal(d, plain) {
			t.Fatalf("step %d: delta of the chunks %q, of the bytes %q", step, d, plain)
		}
		for _, e := range want {
			i, ok := cur.find(e.name, e.isTree())
			if !ok || cur.entry(i) != e {
				t.Fatalf("step %d: find(%s) = %d, %v", step, e.name, i, ok)
			}
		}
	}
	if splits < 3 || len(cur.chunks) < 3 {
		t.Fatalf("%d splits, %d chunks at the end: the test did not exercise chunking", splits, len(cur.chunks))
	}
}

// TestTreeEditCopiesOneChunk checks that changing one entry of a large
// tree shares every other chunk with the tree it was made from.
func TestTreeEditCopiesOneChunk(t *testing.T) {
	var b []byte
	for i := range 500 {
		b = appendEntry(b, treeEntry{name: fmt.Sprintf("deploy-%03d.yaml", i), mode: modeBlob, hash: plumbing.Hash{byte(i)}})
	}
	base, err := decodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []treeEntry{
		{name: "deploy-250.yaml", mode: modeBlob, hash: plumbing.Hash{9, 9}}, // update
		{name: "deploy-250a.yaml", mode: modeBlob, hash: plumbing.Hash{9}},   // insert
		{name: "deploy-250.yaml", mode: modeBlob},                            // delete
	} {
		next := base.set(e)
		copied := 0
		for _, c := range next.chunks {
			if !slices.ContainsFunc(base.chunks, func(o treeChunk) bool { return sameChunk(o.data, c.data) }) {
				copied += len(c.data)
			}
		}
		if copied > chunkMax {
			t.Errorf("%s: %d of %d bytes copied", e.name, copied, next.size)
		}
		if d := deltaOfTrees(base, next); d == nil || len(d) > 100 {
			t.Errorf("%s: delta of %d bytes", e.name, len(d))
		}
	}
}

func TestDecodeTreeRejectsDamage(t *testing.T) {
	good := appendEntry(nil, treeEntry{name: "web.yaml", mode: modeBlob, hash: plumbing.Hash{1}})
	for _, bad := range [][]byte{
		good[:len(good)-1],
		[]byte("100644web.yaml"),
		append([]byte("10x644 w\x00"), make([]byte, 20)...),
	} {
		if _, err := decodeTree(bad); err == nil {
			t.Errorf("decodeTree(%q) accepted damage", bad)
		}
	}
}

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

// TestTreeEditsMatchAFullEncoding applies random inserts, replacements and
// deletions to a tree and checks after each that its bytes are what
// encoding the whole entry list gives, that it decodes back, and that the
// tree it was made from did not change. Names include the cases Git's
// order makes tricky: "a" and "a.b" as files and directories.
func TestTreeEditsMatchAFullEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "a.b", "a-b", "a0", "ab", "b", "web.yaml", "web", "api.yaml", "z"}
	for i := range 40 {
		names = append(names, fmt.Sprintf("deploy-%03d.yaml", i))
	}
	want := map[string]treeEntry{}
	var cur tree
	for step := range 2000 {
		name := names[rng.IntN(len(names))]
		mode := uint32(modeBlob)
		if rng.IntN(3) == 0 {
			mode = modeTree
		}
		var h plumbing.Hash
		if rng.IntN(4) != 0 {
			h[0], h[19] = byte(step), byte(rng.IntN(256))
		}
		key := fmt.Sprintf("%s %o", name, mode)
		if h.IsZero() {
			delete(want, key)
		} else {
			want[key] = treeEntry{name: name, mode: mode, hash: h}
		}
		before := slices.Clone(cur.data)
		next := cur.set(treeEntry{name: name, mode: mode, hash: h})
		if !bytes.Equal(cur.data, before) {
			t.Fatalf("step %d: set changed the tree it was called on", step)
		}
		cur = next
		if ref := referenceTree(want); !bytes.Equal(cur.data, ref) {
			t.Fatalf("step %d (%s %o %v): tree bytes differ from a full encoding\n got %q\nwant %q", step, name, mode, h.IsZero(), cur.data, ref)
		}
		dec, err := decodeTree(slices.Clone(cur.data))
		if err != nil || !slices.Equal(dec.offs, cur.offs) {
			t.Fatalf("step %d: decode = %v, %v; offsets %v", step, dec.offs, err, cur.offs)
		}
		for _, e := range want {
			i, ok := cur.find(e.name, e.isTree())
			if !ok || cur.entry(i) != e {
				t.Fatalf("step %d: find(%s) = %d, %v", step, e.name, i, ok)
			}
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

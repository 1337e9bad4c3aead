package gitstore

import (
	"github.com/go-git/go-git/v5/plumbing"
)

// FileChange is one file that differs between two trees. From is zero for
// an added file, To is zero for a deleted one.
type FileChange struct {
	Path     string
	From, To plumbing.Hash
}

// diffTrees lists the files that differ between the trees a and b (either
// may be zero: empty). It descends only into subtrees whose hashes differ,
// so its cost follows the size of the change, not of the repository.
func diffTrees(src treeSource, a, b plumbing.Hash) ([]FileChange, error) {
	var out []FileChange
	err := diffInto(src, "", a, b, &out)
	return out, err
}

func diffInto(src treeSource, prefix string, a, b plumbing.Hash, out *[]FileChange) error {
	if a == b {
		return nil
	}
	ta, err := optTree(src, a)
	if err != nil {
		return err
	}
	tb, err := optTree(src, b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < ta.len() || j < tb.len() {
		var ea, eb *treeEntry
		switch {
		case i >= ta.len():
			e := tb.entry(j)
			eb = &e
			j++
		case j >= tb.len():
			e := ta.entry(i)
			ea = &e
			i++
		default:
			modeA, nameA, hashA := ta.raw(i)
			modeB, nameB, hashB := tb.raw(j)
			c := compareKey(nameA, modeA == modeTree, nameB, modeB == modeTree)
			if c == 0 && hashA == hashB && modeA == modeB {
				// The same entry on both sides: nothing to decode.
				i++
				j++
				continue
			}
			switch {
			case c < 0:
				e := ta.entry(i)
				ea = &e
				i++
			case c > 0:
				e := tb.entry(j)
				eb = &e
				j++
			default:
				x, y := ta.entry(i), tb.entry(j)
				ea, eb = &x, &y
				i++
				j++
			}
		}
		if err := diffEntry(src, prefix, ea, eb, out); err != nil {
			return err
		}
	}
	return nil
}

func diffEntry(src treeSource, prefix string, ea, eb *treeEntry, out *[]FileChange) error {
	if ea != nil && eb != nil && ea.hash == eb.hash && ea.mode == eb.mode {
		return nil
	}
	name := ""
	var aTree, bTree, aBlob, bBlob plumbing.Hash
	for _, e := range []*treeEntry{ea, eb} {
		if e != nil {
			name = e.name
		}
	}
	if ea != nil {
		if ea.isTree() {
			aTree = ea.hash
		} else {
			aBlob = ea.hash
		}
	}
	if eb != nil {
		if eb.isTree() {
			bTree = eb.hash
		} else {
			bBlob = eb.hash
		}
	}
	if !aTree.IsZero() || !bTree.IsZero() {
		if err := diffInto(src, prefix+name+"/", aTree, bTree, out); err != nil {
			return err
		}
	}
	if aBlob != bBlob {
		*out = append(*out, FileChange{Path: prefix + name, From: aBlob, To: bBlob})
	}
	return nil
}

func optTree(src treeSource, h plumbing.Hash) (tree, error) {
	if h.IsZero() {
		return tree{}, nil
	}
	return src.tree(h)
}

// walkFiles calls fn for every file under the tree h, with its path.
func walkFiles(src treeSource, prefix string, h plumbing.Hash, fn func(path string, blob plumbing.Hash) error) error {
	t, err := optTree(src, h)
	if err != nil {
		return err
	}
	for i := range t.len() {
		e := t.entry(i)
		if e.isTree() {
			if err := walkFiles(src, prefix+e.name+"/", e.hash, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(prefix+e.name, e.hash); err != nil {
			return err
		}
	}
	return nil
}

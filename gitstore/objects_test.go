package gitstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// goneEntry is a directory entry whose file was removed after the
// directory was read.
type goneEntry struct{ fs.DirEntry }

func (goneEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrNotExist }

// TestListingSkipsRemovedEntries: a pack removed while go-git lists the
// pack directory is left out of the listing, instead of failing it (and
// go-git then finding no pack at all).
func TestListingSkipsRemovedEntries(t *testing.T) {
	mem := fstest.MapFS{"pack-1.pack": {}, "pack-2.pack": {}}
	entries, err := fs.ReadDir(mem, ".")
	if err != nil {
		t.Fatal(err)
	}
	entries[0] = goneEntry{entries[0]}
	infos, err := entryInfos(entries)
	if err != nil || len(infos) != 1 || infos[0].Name() != "pack-2.pack" {
		t.Fatalf("infos = %v, %v; want only pack-2.pack", infos, err)
	}

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "objects", "pack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "objects", "pack", "pack-1.idx"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := newObjectReader(dir)
	got, err := r.st.Filesystem().ReadDir("objects/pack")
	if err != nil || len(got) != 1 || got[0].Name() != "pack-1.idx" {
		t.Fatalf("ReadDir = %v, %v", got, err)
	}
}

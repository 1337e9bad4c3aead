package gitstore

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/go-git/go-git/v5/plumbing"
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
	r := newObjectReader(dir, nil, nil, slog.New(slog.DiscardHandler))
	got, err := r.st.Filesystem().ReadDir("objects/pack")
	if err != nil || len(got) != 1 || got[0].Name() != "pack-1.idx" {
		t.Fatalf("ReadDir = %v, %v", got, err)
	}
}

// TestReaderReadsNewPacksAlone: two stores on one repository (two
// processes, as the API and the agent). The reader finds what the writer
// commits in new packs by reading those packs' indexes alone; only after
// maxFreshPacks of them, or when told to, does it re-read every index.
func TestReaderReadsNewPacksAlone(t *testing.T) {
	dir := t.TempDir()
	writer, err := Open(dir, Options{CompactAfter: -1}) // no merge: every pack stays
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Close() })
	first := mustApply(t, writer, createMutation(newDeployment(0, testCluster, "d0")))
	r := newObjectReader(dir, nil, nil, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { r.close() })
	if _, err := r.read(plumbing.BlobObject, first.Records[0].Blob()); err != nil {
		t.Fatal(err)
	}
	mainPacks := r.known.count()
	if mainPacks == 0 {
		t.Fatal("main knows no pack")
	}
	for i := 1; i <= maxFreshPacks+2; i++ {
		res := mustApply(t, writer, createMutation(newDeployment(i, testCluster, fmt.Sprintf("d%d", i))))
		data, err := r.read(plumbing.BlobObject, res.Records[0].Blob())
		if err != nil || hashObject(plumbing.BlobObject, data) != res.Records[0].Blob() {
			t.Fatalf("write %d: %v", i, err)
		}
		switch known := r.known.count(); {
		case i < maxFreshPacks && known != mainPacks:
			t.Fatalf("write %d: main re-read every index (%d packs, was %d)", i, known, mainPacks)
		case i < maxFreshPacks && r.seen.count() != i:
			t.Fatalf("write %d: fresh lists %d packs", i, r.seen.count())
		case i == maxFreshPacks+1 && known <= mainPacks:
			t.Fatalf("after %d new packs main still knows %d", i, known)
		}
	}
	r.reindex()
	if r.seen.count() != 0 {
		t.Errorf("fresh still lists %d packs after a full re-read", r.seen.count())
	}
}

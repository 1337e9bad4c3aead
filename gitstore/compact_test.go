package gitstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

func packCount(dir string) int {
	idx, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
	return len(idx)
}

// TestPacksAreMerged writes many single-write batches (one pack each) and
// checks that the housekeeper merges them while writes and reads go on,
// that git accepts the result, and that a restart adopts what is left.
func TestPacksAreMerged(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, "d"+string(rune('a'+i%26))+string(rune('a'+i/26)))))
		// Reads keep working while packs are merged under them.
		if _, err := s.Diff(ZeroHashForTest, s.Head()); err != nil {
			t.Fatalf("diff after write %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for packCount(dir) > 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := packCount(dir); n > 8 {
		t.Fatalf("%d packs after 40 writes with CompactAfter 4", n)
	}
	s.Close()
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	if got := runGit(t, dir, "ls-tree", "-r", "--name-only", "main"); len(got) == 0 {
		t.Fatal("empty tree")
	}

	s2, err := Open(dir, Options{CompactAfter: 2})
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for packCount(dir) > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := packCount(dir); n != 1 {
		t.Fatalf("%d packs after a restart adopted the old ones, want 1", n)
	}
	changes, err := s2.Diff(ZeroHashForTest, s2.Head())
	if err != nil || len(changes) != 40 {
		t.Fatalf("diff from the empty tree: %d changes, %v", len(changes), err)
	}
	if _, err := s2.Apply(context.Background(), createMutation(newDeployment(99, testCluster, "after"))); err != nil {
		t.Fatal(err)
	}
	s2.Close() // fsck lists packs; a merge deleting one meanwhile would confuse it
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
}

// TestPackWithoutIndexIsLeftOut opens a repository holding a pack
// without its index, as a crash between the two renames of a pack once
// left (go-git cannot read a repository holding one): the store reads the
// other packs, keeps the file (it may be a copy's only copy of some
// objects; this store now publishes the index first) and names it in a
// warning. Before, it deleted the pack.
func TestPackWithoutIndexIsLeftOut(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, createMutation(newDeployment(1, testCluster, "one")))
	s.Close()
	// A second copy of the pack, its index gone.
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	if len(packs) == 0 {
		t.Fatal("no pack")
	}
	data, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, "objects", "pack", "pack-0123456789012345678901234567890123456789.pack")
	if err := os.WriteFile(orphan, data, 0o444); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(orphan, old, old)
	os.Remove(filepath.Join(dir, snapshotFileName)) // every file is read
	s2, logs := openLogged(t, dir)
	if r := s2.idx.files[DeploymentPath(testCluster, "one")]; r == nil {
		t.Fatal("deployment not found after reopening")
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Errorf("the pack without its index was removed: %v", err)
	}
	if !strings.Contains(logs.String(), "a pack without its index is left out") || !strings.Contains(logs.String(), filepath.Base(orphan)) {
		t.Errorf("no warning names the pack without its index:\n%s", logs)
	}
	mustApply(t, s2, createMutation(newDeployment(2, testCluster, "two")))
}

// TestPickMergeIsGeometricAndBounded: the smallest packs are merged, a
// bigger one only once the smaller ones hold half as many objects, and
// never more objects than maxMergedObjects (read off the index's size).
func TestPickMergeIsGeometricAndBounded(t *testing.T) {
	type fake struct {
		name          string
		size, objects int64
	}
	cases := []struct {
		name  string
		packs []fake
		want  []string
	}{
		{"small ones, not the big one", []fake{{"a", 100, 10}, {"b", 100, 10}, {"c", 100, 10}, {"big", 100, 1000}}, []string{"a", "b", "c"}},
		{"the big one once they add up", []fake{{"a", 100, 300}, {"b", 100, 300}, {"big", 100, 1000}}, []string{"a", "b", "big"}},
		{"by objects, not bytes", []fake{{"a", 5000, 10}, {"b", 5000, 10}, {"big", 1000, 1000}}, []string{"a", "b"}},
		{"object bound", []fake{{"a", 100, maxMergedObjects / 2}, {"b", 100, maxMergedObjects / 2}, {"c", 100, 10}}, []string{"c", "a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			git := t.TempDir()
			dir := filepath.Join(git, "objects", "pack")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range tc.packs {
				names = append(names, p.name)
				if err := os.WriteFile(filepath.Join(dir, p.name+".pack"), make([]byte, p.size), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p.name+".idx"), make([]byte, 1072+28*p.objects), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := pickMerge(git, names)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pickMerge = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMergeUsesTheCommittersDeltas writes one deployment per batch into
// two large folders with merging held back, so that every batch pack stores the
// folders it touches whole and leaves a delta hint for each; then merges
// the packs and wants every hint used or dropped, the folders' trees
// stored as deltas, and git to read every object back (git fsck checks
// each object's id against its content, so a wrong delta cannot pass).
func TestMergeUsesTheCommittersDeltas(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: 1000})
	if err != nil {
		t.Fatal(err)
	}
	clusters := []string{testCluster, "22222222-2222-4222-8222-222222222222"}
	for i := range 120 {
		mustApply(t, s, createMutation(newDeployment(i, clusters[i%2], fmt.Sprintf("app-%03d", i))))
	}
	if s.hints.len() < 100 {
		t.Fatalf("%d hints after 120 single-write batches, want one per folder written whole", s.hints.len())
	}
	names := s.own.snapshot()
	merged, err := mergePacks(dir, names, false, s.hints)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.hints.len(); n != 0 {
		t.Errorf("%d hints left after merging every pack", n)
	}
	s.objs.locked(func() { removePacks(dir, names, merged) })
	s.Close()
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	whole, deltas := 0, 0
	for _, line := range strings.Split(runGit(t, dir, "verify-pack", "-v", filepath.Join(dir, "objects", "pack", merged+".idx")), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != "tree" || f[2] == "0" {
			continue
		}
		if len(f) >= 7 {
			deltas++
			continue
		}
		if size, _ := strconv.Atoi(f[2]); size >= 1000 {
			whole++ // a cluster folder (the root and clusters/ are too small for deltas)
		}
	}
	if deltas < 100 || whole > 10 {
		t.Errorf("cluster folders in the merged pack: %d deltas, %d whole", deltas, whole)
	}
}

// TestNoHintsWithoutMerging: with merging off nothing would take the
// committer's delta hints, so none are kept (they would only grow).
func TestNoHintsWithoutMerging(t *testing.T) {
	s, err := Open(t.TempDir(), Options{CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, fmt.Sprintf("app-%d", i))))
	}
	if n := s.hints.len(); n != 0 {
		t.Fatalf("%d hints kept with merging off", n)
	}
}

// TestMergeKeepsOneCopyOfEachObject merges packs that hold the same object
// (one file content written twice, in two batches) and checks the merged
// pack holds every object once, with an index git accepts.
func TestMergeKeepsOneCopyOfEachObject(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: 1000})
	if err != nil {
		t.Fatal(err)
	}
	same := []byte("the same content\n")
	writeFiles(t, s, map[string][]byte{"clusters/" + testCluster + "/a.yaml": same})
	writeFiles(t, s, map[string][]byte{"clusters/" + testCluster + "/b.yaml": same})
	writeFiles(t, s, map[string][]byte{"clusters/" + testCluster + "/a.yaml": nil})
	names := s.own.snapshot()
	total, unique := 0, map[plumbing.Hash]bool{}
	for _, n := range names {
		entries, err := readIndex(filepath.Join(dir, "objects", "pack", n))
		if err != nil {
			t.Fatal(err)
		}
		total += len(entries)
		for _, e := range entries {
			unique[e.hash] = true
		}
	}
	if total == len(unique) {
		t.Fatalf("no object is in two packs (%d objects): the test needs one", total)
	}
	merged, err := mergePacks(dir, names, false, s.hints)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readIndex(filepath.Join(dir, "objects", "pack", merged))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(unique) {
		t.Errorf("merged pack holds %d objects, want %d (of %d in the packs merged)", len(entries), len(unique), total)
	}
	s.objs.locked(func() { removePacks(dir, names, merged) })
	s.Close()
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	runGit(t, dir, "verify-pack", filepath.Join(dir, "objects", "pack", merged+".idx"))
}

// TestCloneSharingPacksStaysIntact: `git clone` of a repository on the
// same disk hard-links its packs. The store's merges then remove packs the
// clone still holds; a merge that emptied or rewrote a removed pack file
// (to reuse it) corrupted the clone: zero-size packs and "Could not read".
// Every pack the clone got must stay as it was.
func TestCloneSharingPacksStaysIntact(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	write := func(count int) {
		for range count {
			mustApply(t, s, createMutation(newDeployment(n, testCluster, "d"+strconv.Itoa(n))))
			n++
		}
	}
	write(30)
	clone := filepath.Join(t.TempDir(), "clone.git")
	runGit(t, "", "clone", "--bare", "--local", dir, clone)
	packs, _ := filepath.Glob(filepath.Join(clone, "objects", "pack", "pack-*.pack"))
	sums := map[string]string{}
	linked := 0
	for _, p := range packs {
		sums[p] = runGit(t, "", "hash-object", p)
		if fi, err := os.Stat(p); err == nil && fi.Sys().(*syscall.Stat_t).Nlink > 1 {
			linked++
		}
	}
	if linked == 0 {
		t.Fatalf("the clone hard-linked none of its %d packs: this test needs them shared", len(packs))
	}
	// Enough writes for several merges, each removing packs the clone
	// holds hard links to.
	for range 8 {
		write(20)
		s.maybeCompact()
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for packCount(dir) > 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := packCount(dir); c > 8 {
		t.Fatalf("%d packs: the merges this test needs did not run", c)
	}
	for p, sum := range sums {
		if got := runGit(t, "", "hash-object", p); got != sum {
			fi, _ := os.Stat(p)
			t.Errorf("the clone's %s changed (size now %d)", filepath.Base(p), fi.Size())
		}
	}
	runGit(t, clone, "fsck", "--strict", "--no-dangling")
	if got := runGit(t, clone, "ls-tree", "-r", "--name-only", "main"); strings.Count(got, "\n") < 29 {
		t.Errorf("the clone lists %d files, want 30", strings.Count(got, "\n")+1)
	}
}

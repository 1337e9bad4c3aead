package gitstore

import (
	"context"
	"slices"
	"strconv"
	"testing"
)

// TestPickRollupIsGeometric: packs in a progression of factor 2 stay; the
// ones that break it, and every smaller one, become one, joined by the
// bigger ones the new pack would break the progression with.
func TestPickRollupIsGeometric(t *testing.T) {
	w := func(objects ...int64) []weighed {
		var out []weighed
		for i, n := range objects {
			out = append(out, weighed{name: "p" + strconv.Itoa(i), objects: n})
		}
		return out
	}
	for _, c := range []struct {
		packs []weighed
		want  []string
	}{
		{w(1, 2, 4), nil},        // too few to bother
		{w(1, 2, 4, 8, 16), nil}, // a progression
		{w(10, 10, 10, 10), []string{"p0", "p1", "p2", "p3"}},
		{w(100, 100, 1000, 5000), []string{"p0", "p1"}}, // 200 < 2*1000: the big ones stay
		{w(100, 100, 300, 5000), []string{"p0", "p1", "p2"}},
		{w(5000, 3, 2, 1000, 1), []string{"p4", "p2", "p1"}},
		{w(1000, 1000, 1000, 1000, 100000), []string{"p0", "p1", "p2", "p3"}},
	} {
		got := pickRollup(c.packs)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("pickRollup(%v) = %v, want %v", c.packs, got, want)
		}
	}
}

// TestRollUpWithGit: packs past the store's merges (here: written by git,
// as pushes and gc leave them) are rolled up into one by git; the store
// goes on reading and writing, and git fsck is clean.
func TestRollUpWithGit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 30 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, "d"+strconv.Itoa(i))))
	}
	packOthers(t, dir, 5, 5) // five packs of others, each the objects of five commits
	before := packCount(dir)
	cands := rollupCandidates(dir, s.own.snapshot())
	if len(cands) != 5 {
		t.Fatalf("%d candidates, want the 5 packs of others", len(cands))
	}
	s.rollUp(context.Background())
	if got := packCount(dir); got != before-4 {
		t.Errorf("%d packs after the roll-up, want %d (5 into 1)", got, before-4)
	}
	if cands := rollupCandidates(dir, s.own.snapshot()); len(cands) != 1 {
		t.Errorf("%d candidates after, want 1", len(cands))
	}
	// Reads and writes go on.
	changes, err := s.Diff(ZeroHashForTest, s.Head())
	if err != nil || len(changes) != 30 {
		t.Fatalf("diff from the empty tree: %d changes, %v", len(changes), err)
	}
	mustApply(t, s, createMutation(newDeployment(99, testCluster, "after")))
	s.Close()
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
}

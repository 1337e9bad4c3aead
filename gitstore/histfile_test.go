package gitstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// syncBuffer is a log sink safe for the store's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openLogged opens the store with a debug log the test can read.
func openLogged(t *testing.T, dir string) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// histories returns the history of each id, waiting for the build.
func histories(t *testing.T, s *Store, ids ...string) map[string][]HistoryEntry {
	t.Helper()
	out := map[string][]HistoryEntry{}
	for _, id := range ids {
		h, err := s.History(context.Background(), id)
		if err != nil {
			t.Fatalf("History(%s): %v", id, err)
		}
		out[id] = h
	}
	return out
}

// gitCommit commits in a clone of the repository and pushes, as an
// engineer would; edit runs in the clone's worktree.
func gitCommit(t *testing.T, dir, msg string, edit func(work string)) {
	t.Helper()
	work := t.TempDir()
	runGit(t, work, "clone", "-q", dir, ".")
	edit(work)
	runGit(t, work, "-c", "user.name=Eng", "-c", "user.email=eng@example.com", "commit", "-qam", msg)
	runGit(t, work, "push", "-q", "origin", "HEAD:main")
}

// TestHistoryFileMakesRestartIncremental writes the history file at
// Close, and the next start reads it and walks only the commit made since
// (here by git), with the same histories as a rebuild from scratch.
func TestHistoryFileMakesRestartIncremental(t *testing.T) {
	dir := t.TempDir()
	s, _ := openLogged(t, dir)
	web, api := newDeployment(1, testCluster, "web"), newDeployment(2, testCluster, "api")
	mustApply(t, s, createMutation(web))
	mustApply(t, s, createMutation(api))
	head := s.Head()
	s.Close()

	data, err := os.ReadFile(filepath.Join(dir, historyFileName))
	if err != nil {
		t.Fatalf("no history file after Close: %v", err)
	}
	f, err := decodeHistoryFile(data)
	if err != nil || f.head != head || len(f.commits) != 2 || len(f.commitsOf(web.Metadata.ID)) != 1 {
		t.Fatalf("history file = %+v, %v; want head %s, 2 commits", f, err, head)
	}

	gitCommit(t, dir, "remove api by hand", func(work string) {
		runGit(t, work, "rm", "-q", "clusters/"+testCluster+"/api.yaml")
	})
	s2, logs := openLogged(t, dir)
	got := histories(t, s2, web.Metadata.ID, api.Metadata.ID)
	if !strings.Contains(logs.String(), "walked=1 ") {
		t.Errorf("start did not walk just the new commit; log:\n%s", logs)
	}
	if h := got[api.Metadata.ID]; len(h) != 2 || strings.TrimSpace(h[1].Message) != "remove api by hand" || h[1].AuthorEmail != "eng@example.com" {
		t.Fatalf("api history = %+v", h)
	}
	s2.Close()

	os.Remove(filepath.Join(dir, historyFileName))
	s3, _ := openLogged(t, dir)
	if again := histories(t, s3, web.Metadata.ID, api.Metadata.ID); !reflect.DeepEqual(again, got) {
		t.Fatalf("rebuilt history differs:\n%+v\nfrom the file's:\n%+v", again, got)
	}
}

// TestHistoryFileAfterForcePush: a history file whose head is no longer
// on the branch is not trusted; commits dropped by the push leave the
// history.
func TestHistoryFileAfterForcePush(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	web, api := newDeployment(1, testCluster, "web"), newDeployment(2, testCluster, "api")
	first := mustApply(t, s, createMutation(web)).Commit
	mustApply(t, s, createMutation(api))
	s.Close()
	runGit(t, dir, "update-ref", "refs/heads/main", first.String())

	s2, logs := openLogged(t, dir)
	got := histories(t, s2, web.Metadata.ID, api.Metadata.ID)
	if len(got[web.Metadata.ID]) != 1 || len(got[api.Metadata.ID]) != 0 {
		t.Fatalf("histories after the force push = %+v", got)
	}
	if !strings.Contains(logs.String(), "branch rewritten") {
		t.Errorf("no rebuild logged:\n%s", logs)
	}
}

// TestHistoryFileUnusable: a damaged file is reported as a warning, a
// file of another format version (as after an upgrade) at info level;
// either way the history is rebuilt from the commits and the file written
// again.
func TestHistoryFileUnusable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spoil  func(data []byte) []byte
		logged string
		warn   bool
	}{
		{"damaged", func(data []byte) []byte {
			data[len(historyMagic)+3] ^= 0xff
			return data
		}, "checksum mismatch", true},
		{"outdated", func([]byte) []byte {
			return []byte("mengi-history 1\n" + strings.Repeat("x", 60))
		}, `level=INFO msg="history file written by another version`, false},
		{"torn in its first line", func(data []byte) []byte {
			return data[:len(historyMagic)-1]
		}, "not a valid history file", true},
		{"cut to half", func(data []byte) []byte {
			return data[:len(data)/2]
		}, "not a valid history file", true},
		{"one byte short", func(data []byte) []byte {
			return data[:len(data)-1]
		}, "not a valid history file", true},
		{"empty", func([]byte) []byte { return nil }, "not a valid history file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			web := newDeployment(1, testCluster, "web")
			mustApply(t, s, createMutation(web))
			s.Close()
			path := filepath.Join(dir, historyFileName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			spoiled := tc.spoil(data)
			if err := os.WriteFile(path, spoiled, 0o644); err != nil {
				t.Fatal(err)
			}
			s2, logs := openLogged(t, dir)
			if h := histories(t, s2, web.Metadata.ID)[web.Metadata.ID]; len(h) != 1 {
				t.Fatalf("history = %+v", h)
			}
			if !strings.Contains(logs.String(), tc.logged) || strings.Contains(logs.String(), "level=WARN") != tc.warn {
				t.Errorf("want %q logged (warning: %v):\n%s", tc.logged, tc.warn, logs)
			}
			s2.Close()
			if now, err := loadHistoryFile(path); err != nil || len(now.commits) != 1 {
				t.Errorf("history file not written again: %v", err)
			}
		})
	}
}

// TestHistorySaveFoldsWhileWriting saves the history again and again
// while writers add commits: every save folds the commits added so far
// into the compact base, none is lost or doubled, and what the store
// answers is what a rebuild from the commits gives.
func TestHistorySaveFoldsWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.HistoryReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 15
	var ids []string
	for w := range writers {
		ids = append(ids, newDeployment(w, testCluster, fmt.Sprintf("w%d", w)).Metadata.ID)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := newDeployment(w, testCluster, fmt.Sprintf("w%d", w))
			mustApply(t, s, createMutation(d))
			for i := range each - 1 {
				img := fmt.Sprintf("nginx:1.%d", i)
				d.Spec.DockerImage = &img
				mustApply(t, s, updateMutation(d))
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	saves := 0
	for running := true; running; saves++ {
		select {
		case <-done:
			running = false
		default:
		}
		s.hist.save(s.historyPath(), s.Head())
	}
	if saves < 2 {
		t.Fatalf("only %d saves", saves)
	}
	if n := s.hist.unsaved(); n != 0 {
		t.Errorf("%d commits unsaved after the last save", n)
	}
	got := histories(t, s, ids...)
	for _, id := range ids {
		if len(got[id]) != each {
			t.Errorf("%s: %d commits, want %d", id, len(got[id]), each)
		}
	}
	s.Close()

	os.Remove(filepath.Join(dir, historyFileName))
	s2 := openStore(t, dir)
	if again := histories(t, s2, ids...); !reflect.DeepEqual(again, got) {
		t.Fatalf("rebuilt history differs:\n%+v\nfrom the saved one:\n%+v", again, got)
	}
}

func hashN(n byte) plumbing.Hash { return plumbing.Hash{19: n} }

// TestHistoryBaseMerge: merging added commits into a base keeps each
// deployment's commits oldest first without duplicates, keeps the
// commits and the ids sorted, and survives the file's round trip.
func TestHistoryBaseMerge(t *testing.T) {
	c := func(ns ...byte) []plumbing.Hash {
		var out []plumbing.Hash
		for _, n := range ns {
			out = append(out, hashN(n))
		}
		return out
	}
	known := func(ns ...byte) map[plumbing.Hash]struct{} {
		m := map[plumbing.Hash]struct{}{}
		for _, n := range ns {
			m[hashN(n)] = struct{}{}
		}
		return m
	}
	first := emptyHistoryBase().merge(hashN(9), map[string][]plumbing.Hash{"b": c(5, 2), "d": c(7)}, known(5, 2, 7, 8))
	second := first.merge(hashN(10), map[string][]plumbing.Hash{"a": c(1), "b": c(2, 6), "c": c(3)}, known(1, 2, 6, 3, 4))
	want := map[string][]plumbing.Hash{"a": c(1), "b": c(5, 2, 6), "c": c(3), "d": c(7)}
	for _, b := range []*historyBase{second, roundTrip(t, second)} {
		for id, list := range want {
			if got := b.commitsOf(id); !reflect.DeepEqual(got, list) {
				t.Errorf("%s: %v, want %v", id, got, list)
			}
		}
		if b.commitsOf("e") != nil || b.commitsOf("") != nil {
			t.Error("commits for a deployment never seen")
		}
		if !slices.IsSortedFunc(b.commits, compareHash) || len(b.commits) != 8 {
			t.Errorf("commits %v: want the 8 known, sorted", b.commits)
		}
		for _, n := range []byte{1, 2, 3, 4, 5, 6, 7, 8} {
			if !b.has(hashN(n)) {
				t.Errorf("commit %d not known", n)
			}
		}
		if b.has(hashN(11)) || b.head != hashN(10) {
			t.Errorf("has(11) = true or head %s", b.head)
		}
	}
}

func roundTrip(t *testing.T, b *historyBase) *historyBase {
	t.Helper()
	path := filepath.Join(t.TempDir(), historyFileName)
	if err := writeHistoryFile(path, b); err != nil {
		t.Fatal(err)
	}
	out, err := loadHistoryFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, b) {
		t.Fatalf("round trip: %+v, want %+v", out, b)
	}
	return out
}

// FuzzDecodeHistoryFile: no body, however damaged, panics the decoder
// (the checksum is made to match, so the parser sees it), and whatever
// decodes is written back the same.
func FuzzDecodeHistoryFile(f *testing.F) {
	b := emptyHistoryBase().merge(hashN(3), map[string][]plumbing.Hash{"x": {hashN(1), hashN(2)}, "y": {hashN(2)}}, map[plumbing.Hash]struct{}{hashN(1): {}, hashN(2): {}})
	path := filepath.Join(f.TempDir(), historyFileName)
	if err := writeHistoryFile(path, b); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[len(historyMagic) : len(data)-sha1.Size])
	f.Fuzz(func(t *testing.T, body []byte) {
		file := append([]byte(historyMagic), body...)
		sum := sha1.Sum(file)
		got, err := decodeHistoryFile(append(file, sum[:]...))
		if err != nil {
			return
		}
		roundTrip(t, got)
	})
}

// TestHistorySaveRacingACommit: a save reads the head, then a commit is
// added before it takes the new commits in, so the file knows a commit
// past its head. The next start still finds the head through it, walks
// nothing again and rebuilds nothing.
func TestHistorySaveRacingACommit(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.HistoryReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	web, api := newDeployment(1, testCluster, "web"), newDeployment(2, testCluster, "api")
	mustApply(t, s, createMutation(web))
	staleHead := s.Head()
	mustApply(t, s, createMutation(api))
	s.hist.save(s.historyPath(), staleHead)
	if n := s.hist.unsaved(); n != 0 {
		t.Fatalf("%d commits unsaved", n)
	}
	s.Close() // nothing unsaved: the file stays as that save wrote it

	s2, logs := openLogged(t, dir)
	got := histories(t, s2, web.Metadata.ID, api.Metadata.ID)
	if len(got[web.Metadata.ID]) != 1 || len(got[api.Metadata.ID]) != 1 {
		t.Fatalf("histories = %+v", got)
	}
	if strings.Contains(logs.String(), "rewritten") || !strings.Contains(logs.String(), "walked=0 ") {
		t.Errorf("the start rebuilt or walked again:\n%s", logs)
	}
}

// TestHistorySavedAfterLongBuild: a start that walks more than
// historySaveAfter commits writes the history file as soon as the build
// ends, not only at Close (a crash before would walk them all again).
func TestHistorySavedAfterLongBuild(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	n := createMany(t, s, historySaveAfter+1)
	s.Close()
	path := filepath.Join(dir, historyFileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir)
	if err := s2.HistoryReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitForHistoryFile(t, path, n)
}

// TestHistoryFoldedUnderLoad: under a steady load the housekeeper saves
// the history (folding the new commits into the compact arrays) once they
// reach a quarter of the saved ones, without waiting for the minute.
func TestHistoryFoldedUnderLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{historyCheck: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.HistoryReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := createMany(t, s, historySaveAfter+1)
	waitForHistoryFile(t, filepath.Join(dir, historyFileName), n)
	if u := s.hist.unsaved(); u >= historySaveAfter {
		t.Errorf("%d commits still unsaved", u)
	}
}

// createMany creates about n deployments from 32 concurrent writers and
// returns how many.
func createMany(t *testing.T, s *Store, n int) int {
	t.Helper()
	const writers = 32
	each := n/writers + 1
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				mustApply(t, s, createMutation(newDeployment(w*1000+i, testCluster, fmt.Sprintf("w%d-%d", w, i))))
			}
		}()
	}
	wg.Wait()
	return writers * each
}

// waitForHistoryFile waits until the history file at path holds at least
// n commits.
func waitForHistoryFile(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := loadHistoryFile(path)
		if err == nil && len(b.commits) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no history file of %d commits written (%v)", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

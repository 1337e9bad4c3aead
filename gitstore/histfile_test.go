package gitstore

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
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
	if err != nil || f.head != head || len(f.known) != 2 || len(f.byID[web.Metadata.ID]) != 1 {
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

// TestHistoryFileCorrupt: a damaged file is reported and rebuilt.
func TestHistoryFileCorrupt(t *testing.T) {
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
	data[len(historyMagic)+3] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, logs := openLogged(t, dir)
	if h := histories(t, s2, web.Metadata.ID)[web.Metadata.ID]; len(h) != 1 {
		t.Fatalf("history = %+v", h)
	}
	if !strings.Contains(logs.String(), "checksum mismatch") {
		t.Errorf("corruption not reported:\n%s", logs)
	}
	s2.Close()
	if data2, _ := os.ReadFile(path); bytes.Equal(data2, data) {
		t.Error("damaged history file not written again")
	}
}

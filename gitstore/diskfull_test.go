package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mengi-cloud/gitops/gitstore/disktest"
)

// TestDiskFullError: ENOSPC and EDQUOT, however wrapped, become
// ErrDiskFull (keeping the file system's error); other errors stay as
// they are.
func TestDiskFullError(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		err := fmt.Errorf("write pack: %w", &fs.PathError{Op: "write", Path: "/repo/tmp_mengi_pack_1", Err: errno})
		got := diskFull(err)
		if !errors.Is(got, ErrDiskFull) || !errors.Is(got, errno) || !strings.Contains(got.Error(), err.Error()) {
			t.Errorf("diskFull(%v) = %v", err, got)
		}
		if again := diskFull(got); again != got {
			t.Errorf("diskFull twice: %v", again)
		}
	}
	for _, err := range []error{nil, syscall.EIO, errors.New("no space left on device"), ErrRefChanged} {
		if got := diskFull(err); got != err {
			t.Errorf("diskFull(%v) = %v, want it unchanged", err, got)
		}
	}
}

// TestFaultsLogOncePerKind: a kind of failure is logged once while it
// lasts, however often it recurs (even between attempts that work), and
// once more when it has not recurred for the settling time.
func TestFaultsLogOncePerKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &syncBuffer{}
		f := newFaults(slog.New(slog.NewTextHandler(logs, nil)), time.Second)
		lines := func() int { return strings.Count(logs.String(), "\n") }
		full := &fs.PathError{Op: "write", Path: "p", Err: syscall.ENOSPC}
		for range 100 {
			f.failed(faultCommitDiskFull, "writes refused", full)
		}
		f.failed(faultHistorySave, "history not saved", full)
		if lines() != 2 || !f.failing(faultCommitDiskFull) {
			t.Fatalf("after 100 failures of one kind and 1 of another:\n%s", logs)
		}
		// A nearly full disk: some attempts work, some fail.
		for range 50 {
			f.ok(faultCommitDiskFull, "writes again")
			time.Sleep(100 * time.Millisecond)
			f.failed(faultCommitDiskFull, "writes refused", full)
		}
		f.ok(faultCommitDiskFull, "writes again")
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if lines() != 2 || !f.failing(faultCommitDiskFull) {
			t.Fatalf("while failures keep recurring:\n%s", logs)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if lines() != 3 || !strings.Contains(logs.String(), `msg="writes again" failed=150 `) || f.failing(faultCommitDiskFull) {
			t.Fatalf("once the failures stopped:\n%s", logs)
		}
		if !f.failing(faultHistorySave) {
			t.Error("the other kind is over too")
		}
		f.failed(faultCommitDiskFull, "writes refused", full)
		if lines() != 4 {
			t.Fatalf("a new failure after it was over:\n%s", logs)
		}
	})
}

// openOnSmallDisk opens a store in a repository on a small tmpfs with a
// log the test reads; nil (and nothing to do) when the test ran in a
// namespace instead (see disktest.Mount).
func openOnSmallDisk(t *testing.T, size int64, opts Options) (*Store, string, *syncBuffer) {
	t.Helper()
	mnt := disktest.Mount(t, size)
	if mnt == "" {
		return nil, "", nil
	}
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := Open(filepath.Join(mnt, "repo"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, mnt, logs
}

// waitLog waits until the log has a line with msg.
func waitLog(t *testing.T, logs *syncBuffer, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `msg="`+msg) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 10 s:\n%s", msg, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leftovers lists the temporary files of dir that hold something (the
// pack files made ahead are empty until a batch takes one).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	tmps, _ := filepath.Glob(filepath.Join(dir, "tmp_mengi_*"))
	var out []string
	for _, f := range tmps {
		fi, err := os.Stat(f)
		if err == nil && fi.Size() > 0 && !strings.HasPrefix(filepath.Base(f), tmpRefPrefix) {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

// TestDiskFullFailsItsWritesAndRecovers fills the disk of a store's
// repository under 32 concurrent writers: each write fails with
// ErrDiskFull (or lands, in space a failed batch gave back), none is run
// again, the branch never moves to a commit that is not on disk, no
// temporary file of a failed batch stays, and the log says it once. The
// history file's save fails the same way, once in the log. Once the
// space is freed the next write lands, without reopening the store, the
// log says so, and every acknowledged write is one commit of a
// repository that git fsck --strict finds clean.
func TestDiskFullFailsItsWritesAndRecovers(t *testing.T) {
	s, mnt, logs := openOnSmallDisk(t, 16<<20, Options{CompactAfter: -1, faultSettle: 200 * time.Millisecond})
	if s == nil {
		return
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	ack := func(d int) {
		mu.Lock()
		defer mu.Unlock()
		acked[newDeployment(d, testCluster, "x").Metadata.ID] = true
	}
	for i := range 10 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, fmt.Sprintf("before-%d", i))))
		ack(i)
	}
	if err := s.HistoryReady(context.Background()); err != nil {
		t.Fatal(err)
	}

	filler := disktest.Fill(t, mnt)
	var wg sync.WaitGroup
	var full, landed int
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				n := 1000 + w*10 + i
				_, err := s.Apply(context.Background(), createMutation(newDeployment(n, testCluster, fmt.Sprintf("full-%d", n))))
				mu.Lock()
				switch {
				case err == nil:
					landed++
					mu.Unlock()
					ack(n)
					continue
				case errors.Is(err, ErrDiskFull) && errors.Is(err, syscall.ENOSPC):
					full++
				default:
					t.Errorf("write on a full disk: %v, want ErrDiskFull", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("160 writes on the full disk: %d refused, %d landed", full, landed)
	if full == 0 {
		t.Fatal("no write failed on the full disk")
	}
	if ref := runGit(t, s.Dir(), "rev-parse", "main"); ref != s.Head().String() {
		t.Errorf("the branch is at %s, the store at %s", ref, s.Head())
	}
	if left := leftovers(t, s.Dir()); len(left) > 0 {
		t.Errorf("temporary files of failed batches left: %v", left)
	}
	if n := strings.Count(logs.String(), "writes refused: the repository's disk is full"); n != 1 {
		t.Errorf("the full disk logged %d times, want once:\n%s", n, logs)
	}
	// The history file cannot be written either: said once.
	before := s.hist.unsaved()
	for range 3 {
		s.saveHistory(s.Head())
	}
	if n := strings.Count(logs.String(), "writing the history file failed"); n != 1 || before == 0 {
		t.Errorf("3 failed saves of the history file (%d commits unsaved) logged %d times, want once:\n%s", before, n, logs)
	}
	if left := leftovers(t, s.Dir()); len(left) > 0 {
		t.Errorf("temporary files of failed saves left: %v", left)
	}

	filler.Remove(t)
	start := time.Now()
	mustApply(t, s, createMutation(newDeployment(2000, testCluster, "after")))
	ack(2000)
	t.Logf("first write after the space came back: %v", time.Since(start).Round(time.Microsecond))
	s.saveHistory(s.Head())
	waitLog(t, logs, "writes committed again: the repository's disk has space")
	waitLog(t, logs, "the history file is written again")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runGit(t, s.Dir(), "fsck", "--strict", "--no-dangling")
	commits := map[string]int{}
	for _, id := range strings.Fields(runGit(t, s.Dir(), "log", "--format=%(trailers:key=Deployment-Id,valueonly)", "main")) {
		commits[id]++
	}
	for id := range acked {
		if commits[id] != 1 {
			t.Errorf("acknowledged write %s is in %d commits, want 1", id, commits[id])
		}
	}
	if len(commits) != len(acked) {
		t.Errorf("%d deployments committed, %d acknowledged", len(commits), len(acked))
	}
}

// TestMergeWaitsForDiskSpace: the housekeeper starts no merge that would
// take the committer's last space, and a merge that fails for a full disk
// removes its temporary file and keeps its packs to merge later (it used
// to leave them unmerged for good). Both are logged once and retried at
// the housekeeper's pace; once space is freed the packs are merged.
func TestMergeWaitsForDiskSpace(t *testing.T) {
	opts := Options{CompactAfter: 1000, diskRetry: 50 * time.Millisecond, faultSettle: 100 * time.Millisecond}
	s, mnt, logs := openOnSmallDisk(t, 32<<20, opts)
	if s == nil {
		return
	}
	for i := range 8 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, fmt.Sprintf("d-%d", i))))
	}
	if n := s.own.len(); n != 8 {
		t.Fatalf("%d packs of its own, want 8", n)
	}
	filler := disktest.Fill(t, mnt)
	for range 20 {
		select {
		case s.compactNow <- struct{}{}:
		case <-time.After(time.Second):
		}
	}
	time.Sleep(200 * time.Millisecond) // four retries
	waitLog(t, logs, "merging packs waits for disk space")
	if n := strings.Count(logs.String(), "merging packs waits for disk space"); n != 1 || !strings.Contains(logs.String(), "need_mb=16 free_mb=0") {
		t.Errorf("merges waiting for space logged %d times, want once with need_mb=16 free_mb=0:\n%s", n, logs)
	}
	if n := s.own.len(); n != 8 {
		t.Errorf("%d packs of its own after merges waited, want the 8", n)
	}
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The same, without the check of free space: the merge itself fails.
	logs = &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.mergeHeadroom = -1 << 40
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if n := s.own.len(); n != 8 {
		t.Fatalf("%d packs of its own after a restart on a full disk, want the 8", n)
	}
	filler2 := disktest.Fill(t, mnt) // what the first store's spare files held
	s.compactNow <- struct{}{}
	waitLog(t, logs, "merging packs waits for disk space")
	time.Sleep(200 * time.Millisecond) // four retries
	if n := strings.Count(logs.String(), "merging packs waits for disk space"); n != 1 || !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("failed merges logged %d times, want once with the error:\n%s", n, logs)
	}
	if n := s.own.len(); n != 8 {
		t.Errorf("%d packs of its own after merges failed, want the 8 kept for later", n)
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("temporary files of failed merges left: %v", left)
	}
	filler.Remove(t)
	filler2.Remove(t)
	deadline := time.Now().Add(10 * time.Second)
	for s.own.len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d packs of its own 10 s after space was freed, want 1 (merged):\n%s", s.own.len(), logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitLog(t, logs, "packs are merged again: the disk has space")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	if n := strings.Count(runGit(t, dir, "log", "--format=%s", "main"), "\n") + 1; n != 8 {
		t.Errorf("%d commits, want 8", n)
	}
}

// TestTempFilesFillWaitsQuietly: when files cannot be made ahead (a full
// disk; here a missing directory), the filler tries again once a second,
// logs it once, and says so when it works again.
func TestTempFilesFillWaitsQuietly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "later")
		logs := &syncBuffer{}
		temps := newTempFiles(dir, newFaults(slog.New(slog.NewTextHandler(logs, nil)), time.Second))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			temps.fill(ctx)
		}()
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), "\n"); n != 1 || len(temps.ready) != 0 {
			t.Fatalf("a minute of failures: %d log lines, %d files ready:\n%s", n, len(temps.ready), logs)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if len(temps.ready) != tempFilesAhead {
			t.Errorf("%d files ready a second after the directory came, want %d", len(temps.ready), tempFilesAhead)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !strings.Contains(logs.String(), "temporary pack files are made ahead again") {
			t.Errorf("no line saying it works again:\n%s", logs)
		}
		cancel()
		<-done
	})
}

// TestOpenOnFullDisk: creating a repository on a full disk fails with
// ErrDiskFull and leaves nothing behind (a half-made one, an empty HEAD
// and no config, could be neither opened nor made again once space was
// freed); an existing repository opens on a full disk and serves reads;
// both take writes once space is freed.
func TestOpenOnFullDisk(t *testing.T) {
	mnt := disktest.Mount(t, 8<<20)
	if mnt == "" {
		return // ran in a namespace
	}
	existing := filepath.Join(mnt, "existing")
	s, err := Open(existing, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, createMutation(newDeployment(1, testCluster, "web")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(mnt, "empty") // a folder made for it, as a mount point is
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}

	filler := disktest.Fill(t, mnt)
	for _, dir := range []string{filepath.Join(mnt, "new"), empty} {
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("Open(%s) on a full disk: %v, want ErrDiskFull", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a repository failed to be made, yet its folder is there: %v", err)
	}
	if left, _ := os.ReadDir(empty); len(left) != 0 {
		t.Errorf("a repository failed to be made in a folder, yet it holds %d entries", len(left))
	}
	s, err = Open(existing, Options{})
	if err != nil {
		t.Fatalf("Open of a repository on a full disk: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if d := s.DeploymentsOf("00000000-0000-7000-8000-aaaaaaaaaaaa", 0, 10, nil); len(d) != 1 {
		t.Errorf("%d deployments read on a full disk, want 1", len(d))
	}
	if _, err := s.Apply(context.Background(), createMutation(newDeployment(2, testCluster, "api"))); !errors.Is(err, ErrDiskFull) {
		t.Errorf("a write on a full disk: %v, want ErrDiskFull", err)
	}

	filler.Remove(t)
	mustApply(t, s, createMutation(newDeployment(2, testCluster, "api")))
	for _, dir := range []string{filepath.Join(mnt, "new"), empty} {
		n, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open(%s) once space was freed: %v", dir, err)
		}
		mustApply(t, n, createMutation(newDeployment(3, testCluster, "db")))
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		runGit(t, dir, "fsck", "--strict", "--no-dangling")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runGit(t, existing, "fsck", "--strict", "--no-dangling")
}

// TestRollUpOnFullDisk: git does not roll packs up on a full disk (the
// store does not start it), and when git runs out of space anyway its
// temporary pack goes with the scratch folder it was given (git leaves it
// behind, and with it all the space it took); once space is freed the
// roll-up runs.
func TestRollUpOnFullDisk(t *testing.T) {
	s, mnt, logs := openOnSmallDisk(t, 64<<20, Options{CompactAfter: -1, faultSettle: 100 * time.Millisecond})
	if s == nil {
		return
	}
	dir := s.Dir()
	for i := range 30 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, fmt.Sprintf("d%d", i))))
	}
	packOthers(t, dir, 5, 5) // five packs of others, each the objects of five commits
	before := packCount(dir)
	names := pickRollup(rollupCandidates(dir, s.own.snapshot()))
	if len(names) != 5 {
		t.Fatalf("%d packs to roll up, want the 5 of others", len(names))
	}
	gitLeftovers := func() []string {
		a, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "tmp_*"))
		b, _ := filepath.Glob(filepath.Join(dir, tmpRollupPrefix+"*"))
		return append(a, b...)
	}

	filler := disktest.Fill(t, mnt)
	for range 3 {
		s.rollUp(context.Background())
	}
	if n := strings.Count(logs.String(), "rolling up packs with git waits for disk space"); n != 1 || packCount(dir) != before {
		t.Errorf("3 roll-ups on a full disk: logged %d times, want once; %d packs, want %d:\n%s", n, packCount(dir), before, logs)
	}
	// git itself out of space: what it wrote goes.
	if _, err := packWithGit(context.Background(), dir, names); err == nil {
		t.Fatal("git rolled packs up on a full disk")
	}
	if left := gitLeftovers(); len(left) > 0 {
		t.Errorf("git's temporary files left on the full disk: %v", left)
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	filler.Remove(t)
	s.rollUp(context.Background())
	if got := packCount(dir); got != before-4 {
		t.Errorf("%d packs after the roll-up once space was freed, want %d (5 into 1)", got, before-4)
	}
	waitLog(t, logs, "packs are rolled up by git again: the disk has space")
	if left := gitLeftovers(); len(left) > 0 {
		t.Errorf("git's temporary files left: %v", left)
	}
	mustApply(t, s, createMutation(newDeployment(99, testCluster, "after")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
}

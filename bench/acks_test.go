package bench_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/gitstore"
)

// TestStoreLoadAndVerifyAcks runs a short store load with an ack log,
// checks that VerifyAcks accepts it, and that it rejects logs that do not
// match the history: a lost write, a write acknowledged out of order, and
// a write whose commit holds other content.
func TestStoreLoadAndVerifyAcks(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	seed, err := bench.SeedRepo(context.Background(), repo, 40, 4)
	if err != nil {
		t.Fatal(err)
	}
	base, err := exec.Command("git", "-C", repo, "rev-parse", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	store, err := gitstore.Open(repo, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	wl := &bench.Workload{Seed: seed, Writers: 4, Run: "t", Now: time.Now().UTC().Truncate(time.Second)}
	res, err := bench.StoreLoad(context.Background(), store, wl, 300*time.Millisecond, 0, &log)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Writes < 8 {
		t.Fatalf("only %d writes in 300 ms", res.Writes)
	}
	file := filepath.Join(dir, "acks.log")
	if err := os.WriteFile(file, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	acks, err := bench.ReadAckLog(file)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bench.VerifyAcks(repo, "main", strings.TrimSpace(string(base)), acks)
	if err != nil {
		t.Fatalf("a clean run: %v", err)
	}
	if rep.Acks != res.Writes || rep.Commits != res.Writes || rep.Unacked != 0 {
		t.Errorf("report %+v for %d acknowledged writes", rep, res.Writes)
	}

	bad := map[string]func([]bench.Ack) []bench.Ack{
		"lost write": func(a []bench.Ack) []bench.Ack {
			a[3].Commit = strings.Repeat("1", 40)
			return a
		},
		"out of order": func(a []bench.Ack) []bench.Ack {
			// The last write claims it was sent after the first one's
			// successor was acknowledged... before the first write.
			first, last := a[0], a[len(a)-1]
			for i := range a {
				if a[i].Commit == last.Commit {
					a[i].Start = first.Start - 2
				}
				if a[i].Commit == first.Commit {
					a[i].Done = first.Start - 3
				}
			}
			return a
		},
		"other content": func(a []bench.Ack) []bench.Ack {
			a[1].Blob = a[2].Blob
			return a
		},
	}
	for name, tamper := range bad {
		forged := tamper(append([]bench.Ack(nil), acks...))
		if _, err := bench.VerifyAcks(repo, "main", strings.TrimSpace(string(base)), forged); err == nil {
			t.Errorf("%s: VerifyAcks found nothing wrong", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

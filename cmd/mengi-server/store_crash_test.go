package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/bench"
)

// TestStoreSIGKILLUnderLoad kills `mengi-server bench store` (64 writers,
// creates and updates, each acknowledged write logged as it is
// acknowledged) with SIGKILL again and again in the middle of its load,
// and checks after every kill that every acknowledged write is in the
// history, as its own commit, in the order it was acknowledged, and that
// git fsck --strict is clean; finally the store opens what the kills left
// and works on. MENGI_CRASH_DEPLOYMENTS sets the repository size (default
// 5,000 so that the race-instrumented run stays short; BENCHMARKS.md
// records a run at 50,000).
func TestStoreSIGKILLUnderLoad(t *testing.T) {
	deployments := 5000
	if v := os.Getenv("MENGI_CRASH_DEPLOYMENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("MENGI_CRASH_DEPLOYMENTS: %v", err)
		}
		deployments = n
	}
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	seed, err := bench.SeedRepo(context.Background(), repo, deployments, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.Save(filepath.Join(dir, bench.SeedFile)); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	base := git("rev-parse", "main")
	ackLog := filepath.Join(dir, "acks.log")
	const writers, kills = 64, 4
	verify := func(when string) bench.AckReport {
		t.Helper()
		acks, err := bench.ReadAckLog(ackLog)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := bench.VerifyAcks(repo, "main", base, acks)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		git("fsck", "--strict", "--no-dangling")
		return rep
	}
	for k := range kills {
		before := ackLines(ackLog)
		cmd := serverCmd("bench", "store", "--dir", dir, "--writers", strconv.Itoa(writers), "--duration", "10m",
			"--reference=false", "--check=false", "--ack-log", ackLog)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once a few hundred more writes were acknowledged, at a
		// random moment after that.
		deadline := time.Now().Add(3 * time.Minute)
		for ackLines(ackLog) < before+300 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("run %d: fewer than 300 writes acknowledged in 3 minutes\n%s", k, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		rep := verify("after kill " + strconv.Itoa(k+1))
		if rep.Unacked > writers*(k+1) {
			t.Errorf("after kill %d: %d commits no acknowledgement names; at most %d writes can have been in flight", k+1, rep.Unacked, writers*(k+1))
		}
		t.Logf("kill %d: %d acknowledged writes, all in order; %d commits, %d of them unacknowledged (in flight at a kill)", k+1, rep.Acks, rep.Commits, rep.Unacked)
	}
	// The store opens what the kills left and goes on (its own check:
	// one commit per acknowledged write, git fsck --strict).
	out := run(t, "bench", "store", "--dir", dir, "--writers", "8", "--duration", "1s", "--reference=false", "--ack-log", ackLog)
	if !strings.Contains(out, "git fsck --strict clean") {
		t.Fatalf("final run:\n%s", out)
	}
	rep := verify("after the final run")
	t.Logf("final: %d acknowledged writes over %d kills, every one in the history in order", rep.Acks, kills)
}

// ackLines counts the lines of an ack log (0 when it does not exist).
func ackLines(file string) int {
	b, _ := os.ReadFile(file)
	return bytes.Count(b, []byte("\n"))
}

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// Ack is one acknowledged write of an ack log (see AckLogHeader).
type Ack struct {
	Run           int // which run of the log (a header starts each)
	Start, Done   int64
	Writer, Write int
	Commit, Blob  string
	Path          string
}

// ReadAckLog reads the acknowledged writes of an ack log that one or more
// runs appended to.
func ReadAckLog(file string) ([]Ack, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ack log: %w", err)
	}
	var acks []Ack
	run := -1
	for n, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		if line == AckLogHeader {
			run++
			continue
		}
		f := strings.Fields(line)
		if len(f) != 7 || run < 0 {
			return nil, fmt.Errorf("ack log line %d: %q is not an ack", n+1, line)
		}
		a := Ack{Run: run, Commit: f[4], Blob: f[5], Path: f[6]}
		var errs [4]error
		a.Start, errs[0] = strconv.ParseInt(f[0], 10, 64)
		a.Done, errs[1] = strconv.ParseInt(f[1], 10, 64)
		a.Writer, errs[2] = strconv.Atoi(f[2])
		a.Write, errs[3] = strconv.Atoi(f[3])
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("ack log line %d: %w", n+1, err)
			}
		}
		acks = append(acks, a)
	}
	return acks, nil
}

// AckReport is what VerifyAcks found.
type AckReport struct {
	Acks    int // acknowledged writes checked
	Commits int // commits on the branch after the base
	Unacked int // of which no acknowledgement names (writes cut off by a crash)
}

// VerifyAcks checks the branch of the repository at repo against the
// acknowledged writes acks, for the commits after base (on the first-parent
// chain):
//   - every acknowledged write is a commit of the branch that sets its path
//     to its blob, and no two acknowledgements name the same commit;
//   - every commit changes exactly one file (one write, one commit);
//   - a write acknowledged before another was sent (an earlier run, or an
//     earlier clock reading in the same run) comes first in the history.
func VerifyAcks(repo, branch, base string, acks []Ack) (AckReport, error) {
	var rep AckReport
	out, err := exec.Command("git", "-C", repo, "log", "--first-parent", "--reverse", "--no-renames",
		"--format=commit %H", "--raw", "--no-abbrev", base+".."+branch).Output()
	if err != nil {
		return rep, fmt.Errorf("git log: %w", err)
	}
	type change struct{ path, blob string }
	pos := map[string]int{}
	changes := map[string][]change{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	cur := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "commit "):
			cur = strings.TrimPrefix(line, "commit ")
			pos[cur] = len(order)
			order = append(order, cur)
		case strings.HasPrefix(line, ":"):
			// :100644 100644 <old> <new> M\t<path>
			meta, path, _ := strings.Cut(line, "\t")
			f := strings.Fields(meta)
			if len(f) == 5 {
				changes[cur] = append(changes[cur], change{path, f[3]})
			}
		}
	}
	rep.Commits = len(order)
	for _, c := range order {
		if n := len(changes[c]); n != 1 {
			return rep, fmt.Errorf("commit %s changes %d files, want 1", c, n)
		}
	}
	used := map[string]bool{}
	for _, a := range acks {
		if _, ok := pos[a.Commit]; !ok {
			return rep, fmt.Errorf("acknowledged write %d of writer %d (run %d, %s) is not in the history: commit %s missing", a.Write, a.Writer, a.Run, a.Path, a.Commit)
		}
		if used[a.Commit] {
			return rep, fmt.Errorf("commit %s acknowledged twice", a.Commit)
		}
		used[a.Commit] = true
		if ch := changes[a.Commit][0]; ch.path != a.Path || ch.blob != a.Blob {
			return rep, fmt.Errorf("commit %s sets %s to %s, but its write was %s = %s", a.Commit, ch.path, ch.blob, a.Path, a.Blob)
		}
	}
	rep.Acks, rep.Unacked = len(acks), len(order)-len(used)

	// Order: sweep the writes by the time they were sent, knowing the
	// latest history position of every write acknowledged before that.
	byStart := slices.Clone(acks)
	slices.SortFunc(byStart, func(x, y Ack) int { return cmpClock(x.Run, x.Start, y.Run, y.Start) })
	byDone := slices.Clone(acks)
	slices.SortFunc(byDone, func(x, y Ack) int { return cmpClock(x.Run, x.Done, y.Run, y.Done) })
	j, maxPos, maxAck := 0, -1, Ack{}
	for _, b := range byStart {
		for j < len(byDone) && cmpClock(byDone[j].Run, byDone[j].Done, b.Run, b.Start) < 0 {
			if p := pos[byDone[j].Commit]; p > maxPos {
				maxPos, maxAck = p, byDone[j]
			}
			j++
		}
		if pos[b.Commit] <= maxPos {
			return rep, fmt.Errorf("write %d of writer %d (run %d) was sent after write %d of writer %d (run %d) was acknowledged, yet its commit comes first",
				b.Write, b.Writer, b.Run, maxAck.Write, maxAck.Writer, maxAck.Run)
		}
	}
	return rep, nil
}

func cmpClock(runA int, a int64, runB int, b int64) int {
	if runA != runB {
		return runA - runB
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

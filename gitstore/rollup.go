package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Rolling up. A merge (compact.go) copies at most maxMergedObjects objects,
// so that its memory stays bounded: a long run at full speed leaves one
// such pack per 50,000 writes or so, and without more the pack count grows
// for as long as the writes go on, and with it the time of every lookup
// and of every fetch. The housekeeper hands those packs to git: once
// rollupAfter packs are past the store's own merges (packs it merged as
// far as it goes, and packs others wrote), it rolls the smallest of them
// up as `git repack --geometric=2` picks them (each pack at least twice
// the objects of the next smaller one; the ones that break the progression
// and all below become one), with `git pack-objects --stdin-packs`. git
// does the copying in its own process (its memory is not the store's) and
// reuses the packs' deltas; the store then removes the rolled-up packs as
// it removes merged ones. So the pack count stays logarithmic in the
// number of writes, and each object is copied O(log n) times.

// rollupAfter is how many packs past the store's merges start a roll-up.
const rollupAfter = 4

// tmpRollupPrefix names the folder git writes a roll-up's temporary files
// in (see packWithGit).
const tmpRollupPrefix = "tmp_mengi_rollup_"

// rollupTimeout bounds one roll-up (git copies hundreds of MB a minute).
const rollupTimeout = 10 * time.Minute

// weighed is a pack and its object count.
type weighed struct {
	name    string
	objects int64
}

// rollupCandidates lists the packs of gitDir that the store's own merges
// leave alone: not in own, or in own with at least half of
// maxMergedObjects (a merge adds at most as many).
func rollupCandidates(gitDir string, own []string) []weighed {
	idxs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.idx"))
	var out []weighed
	for _, idx := range idxs {
		stem := strings.TrimSuffix(idx, ".idx")
		fi, err := os.Stat(idx)
		if err != nil {
			continue
		}
		if _, err := os.Stat(stem + ".pack"); err != nil {
			continue
		}
		w := weighed{name: filepath.Base(stem), objects: idxObjects(fi.Size())}
		if slices.Contains(own, w.name) && w.objects < maxMergedObjects/2 {
			continue
		}
		out = append(out, w)
	}
	return out
}

// pickRollup returns the packs to roll up into one, as git's geometric
// repack (factor 2) splits them: none while they form a progression.
func pickRollup(packs []weighed) []string {
	if len(packs) < rollupAfter {
		return nil
	}
	packs = slices.Clone(packs)
	slices.SortFunc(packs, func(a, b weighed) int { return int(a.objects - b.objects) })
	split := 0
	for i := len(packs) - 1; i > 0; i-- {
		if packs[i].objects < 2*packs[i-1].objects {
			split = i + 1
			break
		}
	}
	var total int64
	for _, p := range packs[:split] {
		total += p.objects
	}
	// The new pack may break the progression above it: join those too.
	for split < len(packs) && packs[split].objects < 2*total {
		total += packs[split].objects
		split++
	}
	if split < 2 {
		return nil
	}
	names := make([]string, split)
	for i, p := range packs[:split] {
		names[i] = p.name
	}
	return names
}

// rollUp rolls the packs git's geometric repack would pick into one new
// pack written by git, then removes them. It runs on the housekeeper.
func (s *Store) rollUp(ctx context.Context) {
	names := s.rollupPicks()
	if len(names) == 0 {
		return
	}
	// git writes the new pack before the rolled-up ones go: like a merge,
	// a roll-up must not take the committer's last space.
	if need, free, err := mergeRoom(s.dir, names, s.opts.mergeHeadroom); err == nil && free < need {
		s.faults.failed(faultRollupDiskFull, "rolling up packs with git waits for disk space", nil,
			"dir", s.dir, "packs", len(names), "need_mb", need>>20, "free_mb", free>>20)
		return
	}
	start := time.Now()
	rolled, err := packWithGit(ctx, s.dir, names)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		// git says a full disk only in words: ask the disk instead.
		if need, free, serr := mergeRoom(s.dir, names, s.opts.mergeHeadroom); serr == nil && free < need {
			s.faults.failed(faultRollupDiskFull, "rolling up packs with git waits for disk space", err,
				"dir", s.dir, "packs", len(names), "need_mb", need>>20, "free_mb", free>>20)
			return
		}
		s.log.Warn("rolling up packs with git failed; they stay as they are", "packs", len(names), "err", err)
		return
	}
	s.faults.ok(faultRollupDiskFull, "packs are rolled up by git again: the disk has space")
	s.own.forget(names)
	s.removeMerged(ctx, names, rolled)
	s.log.Info("packs rolled up by git", "packs", len(names), "into", rolled, "took", time.Since(start).Round(time.Millisecond))
}

// rollupPicks returns the packs to roll up. Damaged packs the reader
// left out are not candidates: git would fail on them at every roll-up, or
// copy what it can read of them and have the store delete the file the
// operator was told to look at.
func (s *Store) rollupPicks() []string {
	cands := slices.DeleteFunc(rollupCandidates(s.dir, s.own.snapshot()), func(w weighed) bool {
		_, out := s.objs.left.why(w.name)
		return out
	})
	return pickRollup(cands)
}

// packWithGit writes the objects of the named packs into one new pack with
// `git pack-objects --stdin-packs` and returns its name.
//
// git writes the pack under a temporary name first, and leaves that file
// behind when it fails: on a full disk it kept all the space it had taken
// (until a `git gc` two weeks later), and every later roll-up would leave
// another. So git runs with an object directory of its own, a temporary
// folder of the git directory (the repository's objects its alternate),
// where its temporary files go; the folder is removed afterwards, and the
// finished pack is written straight into objects/pack.
func packWithGit(ctx context.Context, gitDir string, names []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, rollupTimeout)
	defer cancel()
	var stdin bytes.Buffer
	for _, n := range names {
		stdin.WriteString(n + ".pack\n")
	}
	scratch, err := os.MkdirTemp(gitDir, tmpRollupPrefix)
	if err != nil {
		return "", fmt.Errorf("roll up: %w", err)
	}
	defer os.RemoveAll(scratch)
	if err := os.Mkdir(filepath.Join(scratch, "pack"), 0o755); err != nil {
		return "", fmt.Errorf("roll up: %w", err)
	}
	objects := filepath.Join(gitDir, "objects")
	cmd := exec.CommandContext(ctx, "git", "pack-objects", "--stdin-packs", "--delta-base-offset", "-q", filepath.Join(objects, "pack", "pack"))
	cmd.Env = append(os.Environ(), "GIT_DIR="+gitDir, "GIT_OBJECT_DIRECTORY="+scratch, "GIT_ALTERNATE_OBJECT_DIRECTORIES="+objects)
	cmd.Stdin = &stdin
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git pack-objects --stdin-packs: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	sum := strings.TrimSpace(string(out))
	if len(sum) != 40 {
		return "", fmt.Errorf("git pack-objects --stdin-packs printed %q, not a pack name", sum)
	}
	return "pack-" + sum, nil
}

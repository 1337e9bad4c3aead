package servercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/githttp"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

func benchGitCommand() *cli.Command {
	return &cli.Command{
		Name:  "git",
		Usage: "an engineer's git beside full API write load: push-to-land time, fetch and clone times, pack count over time",
		Description: `Seeds a repository with --deployments deployments (or reuses the one in --dir),
serves it over the git endpoint (/git/deployments.git, the real handler and
git http-backend) and clones it twice. Then --writers writers commit through
the store for --duration while an engineer, every --interval, fetches, commits
a change to a file of their own and pushes it as a person would (git push;
when refused, git pull --rebase && git push), timing the fetch and the time
from the first push to the push landing. One round before the load is the
reference. After the run the second clone, untouched since the start, fetches
everything (the fetch of a clone after --duration of writes) and a new clone
is made. Each round prints the repository's pack count. The last line is
git: writes_per_s=<n> push_land_p50_ms=<n> ... (also appended to --results).
With --rate the writers offer that many writes per second in all (open loop).`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "deployments", Usage: "deployments in the repository before the run", Value: 10000},
			&cli.IntFlag{Name: "clusters", Usage: "clusters they are spread over", Value: 100},
			&cli.IntFlag{Name: "writers", Usage: "concurrent store writers (closed loop)", Value: 64},
			&cli.Float64Flag{Name: "rate", Usage: "offered writes per second from all writers together (open loop); 0: as fast as the store answers"},
			&cli.DurationFlag{Name: "duration", Usage: "length of the write load", Value: 10 * time.Minute},
			&cli.DurationFlag{Name: "interval", Usage: "time between the engineer's rounds", Value: 30 * time.Second},
			&cli.StringFlag{Name: "dir", Usage: "keep the repository in DIR/repo, reusing it when it is there (default: a temporary folder, removed after)"},
			&cli.StringFlag{Name: "results", Usage: "append the result line to this file"},
			&cli.StringFlag{Name: "log-level", Usage: "log level of the store and the git endpoint", Value: "warn"},
		},
		Action: benchGit,
	}
}

// gitRound is one of the engineer's rounds.
type gitRound struct {
	at       time.Duration // since the load started (negative: the reference)
	fetch    time.Duration
	land     time.Duration // first push to landed
	attempts int           // pushes made
	packs    int
	packMB   float64
}

func benchGit(c *cli.Context) error {
	out := c.App.Writer
	if c.Int("writers") < 1 || c.Duration("duration") <= 0 || c.Duration("interval") <= 0 || c.Float64("rate") < 0 {
		return fmt.Errorf("bench git: want --writers 1 or more, a --duration and an --interval above 0, --rate 0 or more")
	}
	dir, seed, cleanup, err := benchSeed(c)
	if err != nil {
		return err
	}
	defer cleanup()
	log, err := NewLogger(c.String("log-level"))
	if err != nil {
		return err
	}
	store, err := gitstore.Open(seed.Dir, gitstore.Options{Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.HistoryReady(c.Context); err != nil {
		return err
	}
	repoURL, stop, err := serveGitForBench(seed.Dir, store, log)
	if err != nil {
		return err
	}
	defer stop()

	eng := &engineer{url: repoURL, work: filepath.Join(dir, "engineer"), repo: seed.Dir}
	idle := filepath.Join(dir, "idle-clone")
	for _, p := range []string{eng.work, idle} {
		os.RemoveAll(p)
	}
	t0 := time.Now()
	if err := eng.git("", "clone", "-q", repoURL, eng.work); err != nil {
		return err
	}
	cloneStart := time.Since(t0)
	if err := eng.git("", "clone", "-q", "--bare", repoURL, idle); err != nil {
		return err
	}
	ref, err := eng.round(c.Context, 0)
	if err != nil {
		return fmt.Errorf("reference round: %w", err)
	}
	ref.at = -1
	fmt.Fprintf(out, "reference (no load): clone_s=%.2f fetch_ms=%.0f push_land_ms=%.0f attempts=%d packs=%d\n",
		cloneStart.Seconds(), ms(ref.fetch), ms(ref.land), ref.attempts, ref.packs)

	wl := &bench.Workload{Seed: seed, Writers: c.Int("writers"), Run: strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36), Now: time.Now().UTC().Truncate(time.Second)}
	loadCtx, cancelLoad := context.WithCancel(c.Context)
	defer cancelLoad()
	type loadDone struct {
		res bench.StoreResult
		err error
	}
	done := make(chan loadDone, 1)
	start := time.Now()
	go func() {
		res, err := bench.StoreLoad(loadCtx, store, wl, c.Duration("duration"), c.Float64("rate"), nil)
		done <- loadDone{res, err}
	}()
	var rounds []gitRound
	tick := time.NewTicker(c.Duration("interval"))
	defer tick.Stop()
	var load loadDone
wait:
	for {
		select {
		case load = <-done:
			break wait
		case <-tick.C:
			r, err := eng.round(c.Context, time.Since(start))
			if err != nil {
				cancelLoad()
				<-done
				return err
			}
			rounds = append(rounds, r)
			fmt.Fprintf(out, "round t_s=%.0f fetch_ms=%.0f push_land_ms=%.0f attempts=%d packs=%d pack_mb=%.1f\n",
				r.at.Seconds(), ms(r.fetch), ms(r.land), r.attempts, r.packs, r.packMB)
		}
	}
	if load.err != nil {
		return fmt.Errorf("write load: %w", load.err)
	}
	t1 := time.Now()
	if err := eng.git(idle, "fetch", "-q", "origin", "+refs/heads/*:refs/heads/*"); err != nil {
		return err
	}
	staleFetch := time.Since(t1)
	fresh := filepath.Join(dir, "fresh-clone")
	os.RemoveAll(fresh)
	t2 := time.Now()
	if err := eng.git("", "clone", "-q", "--bare", repoURL, fresh); err != nil {
		return err
	}
	freshClone := time.Since(t2)
	packs, packMB := packStats(seed.Dir)
	if len(rounds) == 0 {
		return errors.New("no round under load: make --interval shorter than --duration")
	}
	var lands []time.Duration
	attemptsMax, packsMax := 0, 0
	for _, r := range rounds {
		lands = append(lands, r.land)
		attemptsMax, packsMax = max(attemptsMax, r.attempts), max(packsMax, r.packs)
	}
	slices.Sort(lands)
	line := fmt.Sprintf("git: writes_per_s=%.0f push_land_p50_ms=%.0f push_land_max_ms=%.0f push_land_ref_ms=%.0f attempts_max=%d "+
		"fetch_last_ms=%.0f fetch_ref_ms=%.0f stale_clone_fetch_s=%.2f fresh_clone_s=%.2f clone_start_s=%.2f packs_max=%d packs_end=%d pack_mb_end=%.0f rounds=%d",
		load.res.PerSecond(), ms(bench.Percentile(lands, 0.5)), ms(lands[len(lands)-1]), ms(ref.land), attemptsMax,
		ms(rounds[len(rounds)-1].fetch), ms(ref.fetch), staleFetch.Seconds(), freshClone.Seconds(), cloneStart.Seconds(),
		packsMax, packs, packMB, len(rounds))
	fmt.Fprintln(out, line)
	return AppendResult(c.String("results"), fmt.Sprintf("git deployments=%d writers=%d rate=%s duration=%s %s", seed.Deployments, wl.Writers, rateName(c.Float64("rate")), c.Duration("duration"), line))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// serveGitForBench serves the repository over the git endpoint on a
// loopback port, for one user with git access, and returns its URL with
// that user's key in it.
func serveGitForBench(repo string, store *gitstore.Store, log *slog.Logger) (string, func(), error) {
	key := "mc_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	auth := benchAuth{sha: registry.HashKey(key), user: &schema.User{Name: "Engineer", Email: "engineer@example.com", GitAccess: true}}
	h, err := githttp.New(githttp.Options{RepoDir: repo, Auth: auth, Logger: log, Yielder: store})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	u := url.URL{Scheme: "http", User: url.UserPassword("engineer", key), Host: ln.Addr().String(), Path: githttp.Prefix + githttp.RepoName}
	return u.String(), func() { srv.Close(); <-served }, nil
}

// benchAuth knows one key, of one user.
type benchAuth struct {
	sha  string
	user *schema.User
}

func (a benchAuth) UserByKey(sha string) *schema.User {
	if sha == a.sha {
		return a.user
	}
	return nil
}

func (benchAuth) KeyUsed(string, time.Time) error { return nil }

// engineer works in a clone: each round fetches, commits a line to a file
// of their own and pushes it as a person would.
type engineer struct {
	url, work, repo string
	n               int
}

func (e *engineer) git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Engineer", "GIT_AUTHOR_EMAIL=engineer@example.com", "GIT_COMMITTER_NAME=Engineer", "GIT_COMMITTER_EMAIL=engineer@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// maxPushAttempts bounds a round's pushes; a round that needs more fails
// the benchmark (the push never landed).
const maxPushAttempts = 20

func (e *engineer) round(ctx context.Context, at time.Duration) (gitRound, error) {
	r := gitRound{at: at}
	t0 := time.Now()
	if err := e.git(e.work, "fetch", "-q", "origin"); err != nil {
		return r, err
	}
	r.fetch = time.Since(t0)
	if err := e.git(e.work, "rebase", "-q", "origin/main"); err != nil {
		return r, err
	}
	e.n++
	notes := filepath.Join(e.work, "docs", "engineer.md")
	if err := os.MkdirAll(filepath.Dir(notes), 0o755); err != nil {
		return r, err
	}
	f, err := os.OpenFile(notes, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(f, "round %d at %s\n", e.n, at.Round(time.Second))
	f.Close()
	if err := e.git(e.work, "add", "docs"); err != nil {
		return r, err
	}
	if err := e.git(e.work, "commit", "-q", "-m", "docs: round "+strconv.Itoa(e.n)); err != nil {
		return r, err
	}
	t1 := time.Now()
	for r.attempts < maxPushAttempts && ctx.Err() == nil {
		r.attempts++
		if e.git(e.work, "push", "-q", "origin", "main") == nil {
			r.land = time.Since(t1)
			r.packs, r.packMB = packStats(e.repo)
			return r, nil
		}
		if err := e.git(e.work, "pull", "-q", "--rebase"); err != nil {
			return r, err
		}
	}
	return r, fmt.Errorf("round %d: the push did not land in %d attempts (%s)", e.n, r.attempts, time.Since(t1).Round(time.Millisecond))
}

// packStats counts the repository's packs and their size in MiB.
func packStats(repo string) (int, float64) {
	packs, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "pack-*.pack"))
	var size int64
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil {
			size += fi.Size()
		}
	}
	return len(packs), float64(size) / (1 << 20)
}

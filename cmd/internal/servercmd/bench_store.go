package servercmd

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/gitstore"
)

func benchStoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "store",
		Usage: "acknowledged writes per second and latency of the Git store itself (in process), beside git fast-import on the same writes",
		Description: `Seeds a repository with --deployments deployments (or reuses the one in --dir),
runs the same writes through ` + "`git fast-import`" + ` as a reference, then runs --writers
concurrent writers against the store for --duration: each write is a create
or an update, its own commit, durable before it is acknowledged. Afterwards
it checks that every acknowledged write made exactly one commit and that
` + "`git fsck --strict`" + ` is clean. The last line is
writes_per_s=<n> p50_ms=<n> p99_ms=<n> rss_mb=<n> (rss_mb: the peak resident
memory of this process from opening the store to the end of the run).`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "deployments", Usage: "deployments in the repository before the run", Value: 50000},
			&cli.IntFlag{Name: "clusters", Usage: "clusters they are spread over", Value: 100},
			&cli.IntFlag{Name: "writers", Usage: "concurrent writers (closed loop)", Value: 64},
			&cli.Float64Flag{Name: "rate", Usage: "offered writes per second from all writers together (open loop, latency counted from when each write was due); 0: as fast as the store answers"},
			&cli.DurationFlag{Name: "duration", Usage: "length of the run (and of the reference run)", Value: 10 * time.Second},
			&cli.StringFlag{Name: "dir", Usage: "keep the repository in DIR/repo, reusing it when it is there (default: a temporary folder, removed after)"},
			&cli.BoolFlag{Name: "reference", Usage: "run git fast-import on the same writes first", Value: true},
			&cli.BoolFlag{Name: "check", Usage: "check commits and git fsck --strict after the run", Value: true},
			&cli.IntFlag{Name: "compact-after", Usage: "packs written before the store merges them in the background (gitstore's CompactAfter; negative: never)", Value: 32},
			&cli.StringFlag{Name: "ack-log", Usage: "append one line per acknowledged write to this file (for crash tests)"},
			&cli.StringFlag{Name: "results", Usage: "append the result line to this file"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the store run to this file"},
			&cli.StringFlag{Name: "trace", Usage: "write an execution trace of the store run to this file (go tool trace)"},
			&cli.StringFlag{Name: "memprofile", Usage: "write a heap profile at the end of the store run to this file"},
			&cli.StringFlag{Name: "log-level", Usage: "log level of the store", Value: "warn"},
		},
		Action: benchStore,
	}
}

func benchStore(c *cli.Context) error {
	out := c.App.Writer
	dir, seed, cleanup, err := benchSeed(c)
	if err != nil {
		return err
	}
	defer cleanup()
	wl := &bench.Workload{Seed: seed, Writers: c.Int("writers"), Run: strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36), Now: time.Now().UTC().Truncate(time.Second)}
	if wl.Writers < 1 {
		return fmt.Errorf("--writers must be at least 1")
	}
	if c.Bool("reference") {
		if err := fastImportReference(c, dir, seed, wl, out); err != nil {
			return err
		}
	}

	// From here on the process is the store: forget the seeding's and the
	// reference's memory, and measure the peak from now.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	log, err := NewLogger(c.String("log-level"))
	if err != nil {
		return err
	}
	t0 := time.Now()
	store, err := gitstore.Open(seed.Dir, gitstore.Options{Logger: log, CompactAfter: c.Int("compact-after")})
	if err != nil {
		return err
	}
	opened := time.Since(t0)
	// The first start on a repository builds the history index from every
	// commit in the background (later starts read the history file): wait
	// for it, so the run measures the store as it serves.
	if err := store.HistoryReady(c.Context); err != nil {
		store.Close()
		return err
	}
	historyBuilt := time.Since(t0) - opened
	before := store.Head()
	var ackLog io.Writer
	if p := c.String("ack-log"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			store.Close()
			return fmt.Errorf("--ack-log: %w", err)
		}
		defer f.Close()
		ackLog = f
	}
	if p := c.String("cpuprofile"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			store.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
	}
	if p := c.String("trace"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			store.Close()
			return fmt.Errorf("--trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			store.Close()
			return fmt.Errorf("--trace: %w", err)
		}
		defer trace.Stop()
	}
	res, loadErr := bench.StoreLoad(c.Context, store, wl, c.Duration("duration"), c.Float64("rate"), ackLog)
	if c.String("cpuprofile") != "" {
		pprof.StopCPUProfile()
	}
	after := store.Head()
	if p := c.String("memprofile"); p != "" {
		if err := writeHeapProfile(p); err != nil {
			store.Close()
			return err
		}
	}
	closeErr := store.Close()
	rss := PeakRSSMB()
	binary := statusMB("RssFile")
	if loadErr != nil {
		return fmt.Errorf("store run: %d writes failed, first: %w", res.Errors, loadErr)
	}
	if closeErr != nil {
		return closeErr
	}
	fmt.Fprintf(out, "store: deployments=%d clusters=%d writers=%d rate=%s writes=%d errors=%d elapsed_s=%.1f open_s=%.2f history_s=%.2f\n",
		seed.Deployments, len(seed.ClusterIDs), wl.Writers, rateName(c.Float64("rate")), res.Writes, res.Errors, res.Elapsed.Seconds(), opened.Seconds(), historyBuilt.Seconds())
	if c.Bool("check") {
		if err := checkStoreRun(seed.Dir, before, after, res.Writes, out); err != nil {
			return err
		}
	}
	// Of the peak, the file-backed part is mostly the binary's own pages,
	// not the store's data: about 14 MiB for mengi-server, 40-65 MiB for
	// mengi, which links Helm and client-go.
	fmt.Fprintf(out, "memory: rss_peak_mb=%d of which file-backed (the binary) %d\n", rss, binary)
	line := res.Line(rss)
	fmt.Fprintln(out, line)
	return AppendResult(c.String("results"), fmt.Sprintf("store deployments=%d writers=%d rate=%s %s", seed.Deployments, wl.Writers, rateName(c.Float64("rate")), line))
}

// benchSeed is the folder of a benchmark taking --dir and its seeded
// repository (see seedOrReuse); cleanup removes a temporary folder.
func benchSeed(c *cli.Context) (string, *bench.Seed, func(), error) {
	dir, cleanup, err := benchDir(c.String("dir"))
	if err != nil {
		return "", nil, nil, err
	}
	seed, err := seedOrReuse(c, dir)
	if err != nil {
		cleanup()
		return "", nil, nil, err
	}
	return dir, seed, cleanup, nil
}

// benchDir returns the folder a benchmark keeps its repository in: dir, or
// a temporary folder that cleanup removes.
func benchDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	tmp, err := os.MkdirTemp("", "mengi-bench-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// seedOrReuse seeds DIR/repo, or reuses it (and its seed.json) when a
// previous run left it there.
func seedOrReuse(c *cli.Context, dir string) (*bench.Seed, error) {
	repo, seedFile := filepath.Join(dir, "repo"), filepath.Join(dir, bench.SeedFile)
	if _, err := os.Stat(seedFile); err == nil {
		seed, err := bench.LoadSeed(seedFile)
		if err != nil {
			return nil, err
		}
		seed.Dir = repo // the folder may have been copied or moved
		fmt.Fprintf(c.App.Writer, "seed: reusing %s (%d deployments on %d clusters)\n", repo, seed.Deployments, len(seed.ClusterIDs))
		return seed, nil
	}
	t0 := time.Now()
	seed, err := bench.SeedRepo(c.Context, repo, c.Int("deployments"), c.Int("clusters"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.App.Writer, "seed: %d deployments on %d clusters in %.1f s\n", seed.Deployments, len(seed.ClusterIDs), time.Since(t0).Seconds())
	if err := firstStart(c, repo); err != nil {
		return nil, err
	}
	return seed, seed.Save(seedFile)
}

// firstStart opens and closes the store once on a new repository, as a
// server's first start does: it parses every file and builds the history
// from every commit, and at close saves both (the index snapshot and the
// history file) for the starts after it. The measured run is such a later
// start.
func firstStart(c *cli.Context, repo string) error {
	runtime.GC()
	resetPeakRSS()
	t0 := time.Now()
	st, err := gitstore.Open(repo, gitstore.Options{CompactAfter: -1})
	if err != nil {
		return fmt.Errorf("first start: %w", err)
	}
	opened := time.Since(t0)
	if err := st.HistoryReady(c.Context); err != nil {
		st.Close()
		return fmt.Errorf("first start: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("first start: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "first start: open_s=%.2f (every file parsed) rss_peak_mb=%d, closed after %.1f s (index snapshot and history saved)\n",
		opened.Seconds(), PeakRSSMB(), time.Since(t0).Seconds())
	return nil
}

// fastImportReference runs the workload through git fast-import on a copy
// of the seeded repository and prints its rate.
func fastImportReference(c *cli.Context, dir string, seed *bench.Seed, wl *bench.Workload, out io.Writer) error {
	ref := filepath.Join(dir, "reference")
	os.RemoveAll(ref)
	defer os.RemoveAll(ref)
	if err := copyTree(seed.Dir, ref); err != nil {
		return fmt.Errorf("copy the seeded repository: %w", err)
	}
	commits, took, err := bench.FastImport(c.Context, ref, "main", wl, c.Duration("duration"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "git fast-import reference: commits=%d elapsed_s=%.1f commits_per_s=%.1f (one stream, no fsync, no checks)\n",
		commits, took.Seconds(), float64(commits)/took.Seconds())
	return nil
}

// checkStoreRun checks that the run made exactly one commit per
// acknowledged write and that the repository passes git fsck --strict.
func checkStoreRun(repo string, before, after fmt.Stringer, writes int, out io.Writer) error {
	count, err := exec.Command("git", "-C", repo, "rev-list", "--count", before.String()+".."+after.String()).Output()
	if err != nil {
		return fmt.Errorf("git rev-list: %w", err)
	}
	commits, _ := strconv.Atoi(strings.TrimSpace(string(count)))
	if commits != writes {
		return fmt.Errorf("%d acknowledged writes made %d commits", writes, commits)
	}
	t0 := time.Now()
	if b, err := exec.Command("git", "-C", repo, "fsck", "--strict", "--no-dangling").CombinedOutput(); err != nil {
		return fmt.Errorf("git fsck --strict: %v: %s", err, b)
	}
	fmt.Fprintf(out, "check: one commit per acknowledged write (%d), git fsck --strict clean (%.1f s)\n", commits, time.Since(t0).Seconds())
	return nil
}

// copyTree copies the folder src to dst (regular files and folders).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// resetPeakRSS resets the process's peak resident set size (VmHWM), so a
// later peakRSSMB measures from now (Linux; ignored elsewhere).
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// writeHeapProfile writes the live heap (after a collection) to file.
func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

func rateName(rate float64) string {
	if rate <= 0 {
		return "max"
	}
	return strconv.FormatFloat(rate, 'f', -1, 64)
}

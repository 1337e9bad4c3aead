package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
	"github.com/mengi-cloud/gitops/forge"
	"github.com/mengi-cloud/gitops/forge/forgetest"
	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/hooks"
	"github.com/mengi-cloud/gitops/prcheck"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
)

func benchForgeCommand() *cli.Command {
	return &cli.Command{
		Name: "forge",
		Usage: "the repository on a real Gitea (MENGI_FORGE_BIN, `make forge-bin`): API creates beside a local repository, " +
			"merge → the agent's mirror has it (webhook, and poll only), pull request opened → status",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "forge-bin", EnvVars: []string{"MENGI_FORGE_BIN"}, Usage: "folder of the gitea binary (bash tools/forge/build.sh --print-dir)", Required: true},
			&cli.IntSliceFlag{Name: "clients", Usage: "API clients of the create runs", Value: cli.NewIntSlice(1, 32)},
			&cli.DurationFlag{Name: "duration", Usage: "length of each create run", Value: 10 * time.Second},
			&cli.IntFlag{Name: "merges", Usage: "pull requests merged per mode (webhook, poll)", Value: 10},
			&cli.DurationFlag{Name: "poll-interval", Usage: "the agent's --poll-interval in the poll-only mode", Value: 10 * time.Second},
			&cli.IntFlag{Name: "prs", Usage: "pull requests opened for the status latency", Value: 10},
			&cli.StringFlag{Name: "results", Usage: "append the result lines to this file"},
		},
		Action: benchForge,
	}
}

// benchT runs the forge harness outside a test: a failure ends the run
// with an error.
type benchT struct {
	dir      string
	cleanups []func()
	failed   bool
}

type benchAbort struct{ err error }

func (b *benchT) Helper() {}
func (b *benchT) Fatalf(format string, args ...any) {
	b.failed = true
	panic(benchAbort{fmt.Errorf(format, args...)})
}
func (b *benchT) Errorf(format string, args ...any) {
	b.failed = true
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
func (b *benchT) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (b *benchT) TempDir() string {
	d, err := os.MkdirTemp(b.dir, "forge-")
	if err != nil {
		b.Fatalf("temp dir: %v", err)
	}
	return d
}
func (b *benchT) Cleanup(f func()) { b.cleanups = append(b.cleanups, f) }
func (b *benchT) Failed() bool     { return b.failed }

func (b *benchT) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

func benchForge(c *cli.Context) (err error) {
	os.Setenv(forgetest.EnvBin, c.String("forge-bin"))
	dir, err := os.MkdirTemp("", "mengi-bench-forge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t := &benchT{dir: dir}
	defer t.close()
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(benchAbort)
			if !ok {
				panic(r)
			}
			err = a.err
		}
	}()
	f := forgetest.Start(t)
	out := func(line string) error {
		fmt.Fprintln(c.App.Writer, line)
		return servercmd.AppendResult(c.String("results"), line)
	}
	log := slog.New(slog.DiscardHandler)
	ref, err := benchGitPush(t, f, 10)
	if err != nil {
		return err
	}
	if err := out(ref); err != nil {
		return err
	}
	for _, n := range c.IntSlice("clients") {
		for _, remote := range []bool{false, true} {
			line, err := benchForgeCreates(c.Context, t, f, log, n, remote, c.Duration("duration"))
			if err != nil {
				return err
			}
			if err := out(line); err != nil {
				return err
			}
		}
	}
	if c.Int("merges") == 0 && c.Int("prs") == 0 {
		return nil
	}
	lines, err := benchForgeMerges(c, t, f, log)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if err := out(l); err != nil {
			return err
		}
	}
	return nil
}

// benchGitPush is the reference: n pushes of one small commit each with
// the git CLI, one after the other, to a repository of the same Gitea.
func benchGitPush(t *benchT, f *forgetest.Forge, n int) (string, error) {
	f.CreateRepo("reference")
	work := t.TempDir()
	git := func(args ...string) error {
		cmd := exec.Command("git", append([]string{"-C", work, "-c", "user.name=Bench", "-c", "user.email=bench@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := git("init", "-q", "--initial-branch=main"); err != nil {
		return "", err
	}
	var lat []time.Duration
	for i := range n {
		if err := os.WriteFile(filepath.Join(work, "f.txt"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			return "", err
		}
		if err := git("add", "f.txt"); err != nil {
			return "", err
		}
		if err := git("commit", "-qm", fmt.Sprint(i)); err != nil {
			return "", err
		}
		t0 := time.Now()
		if err := git("push", "-q", f.AuthCloneURL("reference"), "main"); err != nil {
			return "", err
		}
		lat = append(lat, time.Since(t0))
	}
	return fmt.Sprintf("forge reference git_push pushes=%d p50_ms=%.0f p95_ms=%.0f", n, ms(bench.Percentile(lat, 0.50)), ms(bench.Percentile(lat, 0.95))), nil
}

// benchSystem is an API (with the webhook and, when a forge client is
// given, pull request checks) on a mirror of a Gitea repository.
type benchSystem struct {
	repos   *registry.Repos
	remote  *servercmd.Remote
	url     string
	key     string
	cluster string
	stop    func()
}

func startBenchSystem(ctx context.Context, t *benchT, f *forgetest.Forge, log *slog.Logger, repo string, remote bool, webhookTo []hooks.Syncer, checks bool) (*benchSystem, error) {
	dir := t.TempDir()
	var rem *servercmd.Remote
	if remote {
		rem = &servercmd.Remote{URL: f.CreateRepo(repo), Token: f.Token(), Poll: time.Minute, WebhookSecret: []byte("bench-secret")}
	}
	repos, gr, err := servercmd.OpenRepos(ctx, filepath.Join(dir, "repo"), "", rem, log)
	if err != nil {
		return nil, err
	}
	s := &benchSystem{repos: repos, remote: rem}
	if s.key, _, err = repos.Registry.AddKey(ctx, "Ada Lovelace", "ada@example.com"); err != nil {
		return nil, err
	}
	cl, err := repos.Registry.AddCluster(ctx, registry.ClusterSpec{Name: "bench", Domain: "apps.test"})
	if err != nil {
		return nil, err
	}
	s.cluster = cl.ID
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var checker *prcheck.Checker
	mux := http.NewServeMux()
	if remote {
		var queue hooks.Queue
		if checks {
			if checker, err = benchChecker(f, repos, gr, repo, log, dir); err != nil {
				cancel()
				return nil, err
			}
			queue = checker
		}
		h, err := hooks.New(hooks.Options{Secret: rem.WebhookSecret, Store: syncers(append(webhookTo, repos.Deployments)), PullRequests: queue})
		if err != nil {
			cancel()
			return nil, err
		}
		mux.Handle(hooks.Path, h)
	}
	mux.Handle("/", api.New(repos.Deployments, repos.Registry, api.Options{Logger: log}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	go func() {
		defer close(done)
		if checker != nil {
			checker.Run(runCtx)
		}
	}()
	s.url = "http://" + ln.Addr().String()
	s.stop = func() { srv.Close(); cancel(); <-done; repos.Close() }
	if remote {
		f.AddWebhook(repo, s.url+hooks.Path, string(rem.WebhookSecret), []string{"push", "pull_request"})
	}
	return s, nil
}

type syncers []hooks.Syncer

func (s syncers) Sync() {
	for _, x := range s {
		x.Sync()
	}
}

func benchChecker(f *forgetest.Forge, repos *registry.Repos, gr prcheck.Fetcher, repo string, log *slog.Logger, dir string) (*prcheck.Checker, error) {
	client, err := forge.New(forge.Options{Kind: forge.KindGitea, APIURL: f.APIURL(), Repo: f.Owner() + "/" + repo, Token: f.Token()})
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(render.Options{CacheDir: filepath.Join(dir, "charts"), Logger: log})
	if err != nil {
		return nil, err
	}
	return prcheck.New(prcheck.Options{GitDir: repos.Deployments.Dir(), Remote: gr, Registry: repos.Registry, Renderer: renderer,
		Reporter: prcheck.ForgeReporter(client), Logger: log})
}

// benchForgeCreates measures API creates on a local repository or on a
// mirror of a Gitea repository.
func benchForgeCreates(ctx context.Context, t *benchT, f *forgetest.Forge, log *slog.Logger, clients int, remote bool, d time.Duration) (string, error) {
	s, err := startBenchSystem(ctx, t, f, log, fmt.Sprintf("creates-%d", clients), remote, nil, false)
	if err != nil {
		return "", err
	}
	defer s.stop()
	res := bench.CreateLoad(ctx, s.url, s.key, []string{s.cluster}, clients, d, 0)
	where := "local"
	if remote {
		where = "gitea"
	}
	return fmt.Sprintf("forge creates repo=%s clients=%d %s", where, clients, res), nil
}

var replicasRE = regexp.MustCompile(`(?m)^  replicas: \d+$`)

// benchForgeMerges measures merge → the agent's mirror holds the merge,
// with the webhook and with the poll alone, and pull request opened →
// status posted.
func benchForgeMerges(c *cli.Context, t *benchT, f *forgetest.Forge, log *slog.Logger) ([]string, error) {
	ctx := c.Context
	const repo = "merges"
	dir := t.TempDir()
	// Two agent mirrors: one fetched by the webhook, one by its poll only.
	var agents [2]*gitstore.Store
	hooked := &lateSync{}
	s, err := startBenchSystem(ctx, t, f, log, repo, true, []hooks.Syncer{hooked}, true)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	for i, poll := range []time.Duration{time.Hour, c.Duration("poll-interval")} {
		mirror := filepath.Join(dir, fmt.Sprintf("agent-%d", i))
		gr, err := gitremote.New(mirror, gitremote.Options{URL: s.remote.URL, Token: s.remote.Token})
		if err != nil {
			return nil, err
		}
		if agents[i], err = gitstore.Open(mirror, gitstore.Options{Logger: log, Holds: gitstore.HoldsDeployments, Remote: gr, RemotePoll: poll}); err != nil {
			return nil, err
		}
		defer agents[i].Close()
	}
	hooked.set(agents[0]) // the webhook fetches the first agent mirror too
	path, err := benchCreate(ctx, s)
	if err != nil {
		return nil, err
	}
	f.WaitNotEmpty(repo)
	var lines []string
	for mode, agent := range agents {
		name := [2]string{"webhook", "poll"}[mode]
		var lat []time.Duration
		for i := range c.Int("merges") {
			file, err := gitShow(s.repos.Deployments.Dir(), "main:"+path)
			if err != nil {
				return nil, err
			}
			branch := fmt.Sprintf("%s-%d", name, i)
			f.CommitFile(repo, "main", branch, path, []byte(replicasRE.ReplaceAllString(file, fmt.Sprintf("  replicas: %d", i+2))), "replicas "+branch)
			pr := f.OpenPR(repo, branch, "main", "replicas "+branch)
			f.WaitMergeable(repo, pr)
			merge := f.MergePR(repo, pr, "merge")
			t0 := time.Now()
			if err := waitHead(ctx, agent, merge, 2*c.Duration("poll-interval")+30*time.Second); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			lat = append(lat, time.Since(t0))
			s.repos.Deployments.Sync()
			if err := waitHead(ctx, s.repos.Deployments, merge, 30*time.Second); err != nil {
				return nil, err
			}
		}
		lines = append(lines, fmt.Sprintf("forge merge_to_agent mode=%s poll_s=%.0f merges=%d p50_ms=%.0f p95_ms=%.0f",
			name, pollOf(mode, c.Duration("poll-interval")).Seconds(), len(lat), ms(bench.Percentile(lat, 0.50)), ms(bench.Percentile(lat, 0.95))))
	}
	// Pull request opened → status posted.
	var lat []time.Duration
	for i := range c.Int("prs") {
		file, err := gitShow(s.repos.Deployments.Dir(), "main:"+path)
		if err != nil {
			return nil, err
		}
		branch := fmt.Sprintf("status-%d", i)
		sha := f.CommitFile(repo, "main", branch, path, []byte(replicasRE.ReplaceAllString(file, fmt.Sprintf("  replicas: %d", 50+i))), "replicas "+branch)
		t0 := time.Now()
		f.OpenPR(repo, branch, "main", "replicas "+branch)
		if err := waitStatus(ctx, f, repo, sha, time.Minute); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	lines = append(lines, fmt.Sprintf("forge pr_to_status prs=%d p50_ms=%.0f p95_ms=%.0f", len(lat), ms(bench.Percentile(lat, 0.50)), ms(bench.Percentile(lat, 0.95))))
	return lines, nil
}

func pollOf(mode int, poll time.Duration) time.Duration {
	if mode == 0 {
		return 0
	}
	return poll
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// lateSync is a webhook target set once it exists.
type lateSync struct {
	mu sync.Mutex
	s  hooks.Syncer
}

func (l *lateSync) set(s hooks.Syncer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = s
}

func (l *lateSync) Sync() {
	l.mu.Lock()
	s := l.s
	l.mu.Unlock()
	if s != nil {
		s.Sync()
	}
}

// benchCreate creates one deployment through the API and returns its
// path.
func benchCreate(ctx context.Context, s *benchSystem) (string, error) {
	body := fmt.Sprintf(`{"cluster_id":%q,"name":"web","docker_image":"nginx:1.27","replicas":1,"container_port":8080}`, s.cluster)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/deployments", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create: %s", resp.Status)
	}
	return gitstore.DeploymentPath(s.cluster, "web"), nil
}

func gitShow(gitDir, rev string) (string, error) {
	out, err := exec.Command("git", "--git-dir", gitDir, "show", rev).Output()
	if err != nil {
		return "", fmt.Errorf("git show %s: %w", rev, err)
	}
	return string(out), nil
}

// waitHead waits until store's head is commit.
func waitHead(ctx context.Context, store *gitstore.Store, commit string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for store.Head().String() != commit {
		if time.Now().After(deadline) {
			return fmt.Errorf("the mirror did not take in %s within %v (head %s)", commit, limit, store.Head())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// waitStatus waits until commit sha has a mengi/validate status that is
// not pending.
func waitStatus(ctx context.Context, f *forgetest.Forge, repo, sha string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		for _, s := range f.CommitStatuses(repo, sha) {
			if s.Context == prcheck.Context && s.State != "pending" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("no status on " + sha + " within " + limit.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

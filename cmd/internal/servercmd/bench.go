package servercmd

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/bench"
)

// BenchCommand is `bench` with its api and store subcommands, and more
// between them (the mengi binary adds the agent's).
func BenchCommand(more ...*cli.Command) *cli.Command {
	return &cli.Command{
		Name:        "bench",
		Usage:       "measure throughput and latency (results for BENCHMARKS.md)",
		Subcommands: append(append([]*cli.Command{benchAPICommand()}, more...), benchStoreCommand(), benchGitCommand(), benchRequestsCommand()),
	}
}

func benchAPICommand() *cli.Command {
	return &cli.Command{
		Name:  "api",
		Usage: "acknowledged creates per second and latency over loopback HTTP, on a repository seeded with --deployments",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "deployments", Usage: "deployments in the repository before the run", Value: 0},
			&cli.IntFlag{Name: "clusters", Usage: "clusters they are spread over", Value: 100},
			&cli.IntFlag{Name: "clients", Usage: "concurrent clients (closed loop)", Value: 1},
			&cli.DurationFlag{Name: "duration", Usage: "length of the run", Value: 10 * time.Second},
			&cli.StringFlag{Name: "dir", Usage: "where to create the repository (default: a temporary folder, removed after)"},
			&cli.StringFlag{Name: "results", Usage: "append the result line to this file"},
			&cli.StringFlag{Name: "log-level", Usage: "log level of the store (warn: quiet)", Value: "warn"},
			&cli.StringFlag{Name: "remote", Usage: "an empty repository on a Git server: the store is its mirror and every batch is pushed there before it is answered"},
			&cli.StringFlag{Name: "remote-token-file", Usage: "file holding the token for --remote (or MENGI_REMOTE_TOKEN)"},
			&cli.DurationFlag{Name: "poll-interval", Hidden: true, Value: 10 * time.Second},
			&cli.StringFlag{Name: "webhook-secret-file", Hidden: true},
		},
		Action: benchAPI,
	}
}

func benchAPI(c *cli.Context) error {
	dir := c.String("dir")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mengi-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	repo := filepath.Join(dir, "repo")
	t0 := time.Now()
	seed, err := bench.SeedRepo(c.Context, repo, c.Int("deployments"), c.Int("clusters"))
	if err != nil {
		return err
	}
	seeded := time.Since(t0)
	t0 = time.Now()
	log, err := NewLogger(c.String("log-level"))
	if err != nil {
		return err
	}
	// The seed holds users and clusters among the deployments, as an
	// earlier version did: opening moves them to the registry.
	remote, err := RemoteFromFlags(c)
	if err != nil {
		return err
	}
	repos, _, err := OpenRepos(c.Context, repo, "", remote, log)
	if err != nil {
		return err
	}
	defer repos.Close()
	opened := time.Since(t0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(repos.Deployments, repos.Registry, api.Options{Logger: slog.New(slog.DiscardHandler)})}
	go srv.Serve(ln)
	defer srv.Close()

	res := bench.CreateLoad(c.Context, "http://"+ln.Addr().String(), seed.Key, seed.ClusterIDs, c.Int("clients"), c.Duration("duration"), 0)
	where := "local"
	if remote != nil {
		where = "remote"
	}
	line := fmt.Sprintf("repo=%s deployments=%d clients=%d %s seed_s=%.1f open_s=%.2f rss_mb=%d",
		where, c.Int("deployments"), c.Int("clients"), res, seeded.Seconds(), opened.Seconds(), PeakRSSMB())
	fmt.Fprintln(c.App.Writer, line)
	return AppendResult(c.String("results"), line)
}

// AppendResult appends a benchmark's result line to file (none when file
// is empty).
func AppendResult(file, line string) error {
	if file == "" {
		return nil
	}
	out, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if _, err := fmt.Fprintln(out, line); err != nil {
		out.Close()
		return fmt.Errorf("results: %w", err)
	}
	return out.Close()
}

// PeakRSSMB reads the process's peak resident set size (VmHWM) in MiB.
func PeakRSSMB() int { return statusMB("VmHWM") }

// statusMB reads a "<field>: N kB" line of /proc/self/status, in MiB (0
// when there is none).
func statusMB(field string) int { return statusKB(field) / 1024 }

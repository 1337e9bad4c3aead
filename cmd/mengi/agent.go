package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/agent"
	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// agentFlags are the agent's tuning and fetch flags, shared by `agent` and
// `up`.
func agentFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.IntFlag{Name: "workers", Usage: "deployments reconciled at once", Value: 4},
		&cli.DurationFlag{Name: "health-timeout", Usage: "how long a release may take to become healthy", Value: 2 * time.Minute},
		&cli.DurationFlag{Name: "drift-interval", Usage: "how often releases are checked for changes made by hand (0: never)", Value: 30 * time.Second},
		&cli.StringFlag{Name: "chart-cache", Usage: "folder for fetched Helm charts (default: <repo>/../charts)"},
		&cli.IntFlag{Name: "prune-hold-percent", Value: 25,
			Usage: "a commit removing the files of at least two and more than this percentage of a cluster's deployments (or all of them) waits for `mengi prune --confirm`"},
	}, fetchFlags()...)
}

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "apply the repository's deployments to their clusters and write their status back",
		Flags: append(append(append([]cli.Flag{servercmd.RepoFlag(), servercmd.RegistryFlag(), servercmd.LogFlag(),
			&cli.StringFlag{Name: "cpu-profile", Usage: "write a CPU profile of the whole run to this file (for `mengi bench agent`)", Hidden: true},
			&cli.StringFlag{Name: "listen", EnvVars: []string{"MENGI_AGENT_LISTEN"},
				Usage: "serve the forge's webhook (POST /hooks/git) on this address, for an agent running without `mengi serve` (needs --remote and --webhook-secret-file)"},
		}, agentFlags()...), servercmd.RemoteFlags()...), forgeFlags()...),
		Action: func(c *cli.Context) error {
			log, err := servercmd.NewLogger(c.String("log-level"))
			if err != nil {
				return err
			}
			if path := c.String("cpu-profile"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			remote, err := servercmd.RemoteFromFlags(c)
			if err != nil {
				return err
			}
			if err := checkListen(c, remote); err != nil {
				return err
			}
			repos, gr, err := servercmd.OpenRepos(c.Context, c.String("repo"), c.String("registry"), remote, log)
			if err != nil {
				return err
			}
			defer repos.Close()
			if err := servercmd.InstallPushCheck(repos, log); err != nil {
				return err
			}
			return runAgent(c, repos, remote, gr, log)
		},
	}
}

// checkListen refuses --listen without a webhook to serve, and a webhook
// secret without --listen.
func checkListen(c *cli.Context, remote *servercmd.Remote) error {
	hasSecret := remote != nil && remote.WebhookSecret != nil
	switch {
	case c.String("listen") != "" && !hasSecret:
		return errors.New("--listen serves the forge's webhook: give --remote and --webhook-secret-file")
	case c.String("listen") == "" && hasSecret:
		return errors.New("--webhook-secret-file needs --listen ADDR, where the forge delivers POST /hooks/git")
	}
	return nil
}

// runAgent runs the agent on the repositories until the command's context
// ends; with --listen, beside the forge's webhook and the pull request
// checks.
func runAgent(c *cli.Context, repos *registry.Repos, remote *servercmd.Remote, gr *gitremote.Remote, log *slog.Logger) error {
	a, err := newAgent(c, repos, log)
	if err != nil {
		return err
	}
	if c.String("listen") == "" {
		return a.Run(c.Context)
	}
	prs, err := pullRequests(c, repos, remote, gr, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx)
		cancel()
	}()
	serveErr := servercmd.ServeWithChecks(ctx, repos, remote, prs, log, func(ctx context.Context, mounts []servercmd.Mount) error {
		mux := http.NewServeMux()
		for _, m := range mounts {
			mux.Handle(m.Path, m.Handler)
		}
		return servercmd.Serve(ctx, "webhook", c.String("listen"), mux, 10*time.Second, log, nil, nil)
	})
	cancel()
	return errors.Join(serveErr, <-done)
}

func newAgent(c *cli.Context, repos *registry.Repos, log *slog.Logger) (*agent.Agent, error) {
	cache := c.String("chart-cache")
	if cache == "" {
		cache = filepath.Join(filepath.Dir(filepath.Clean(repos.Deployments.Dir())), "charts")
	}
	drift := c.Duration("drift-interval")
	if drift == 0 {
		drift = -1
	}
	holdPct := c.Int("prune-hold-percent")
	if holdPct < 1 || holdPct > 100 {
		return nil, fmt.Errorf("--prune-hold-percent %d: give 1 to 100", holdPct)
	}
	fetch, err := fetchOptions(c, log)
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(render.Options{CacheDir: cache, Logger: log, Fetch: fetch})
	if err != nil {
		return nil, err
	}
	return agent.New(agent.Options{
		Store:          repos.Deployments,
		Registry:       repos.Registry,
		Renderer:       renderer,
		Connect:        connector(log),
		Workers:        c.Int("workers"),
		HealthTimeout:  c.Duration("health-timeout"),
		DriftInterval:  drift,
		PruneHoldShare: float64(holdPct) / 100,
		Logger:         log,
	})
}

// connector opens cluster connections for the agent.
func connector(log *slog.Logger) agent.Connector {
	return func(c *schema.Cluster) (agent.Conn, error) {
		return cluster.Connect(c, cluster.Options{Logger: log})
	}
}

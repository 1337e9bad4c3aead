package servercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/githttp"
	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/hooks"
	"github.com/mengi-cloud/gitops/registry"
)

// RepoFlag is --repo, the bare repository a command works on.
func RepoFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "repo", Usage: "bare Git repository holding the deployments (created when missing)", Required: true, EnvVars: []string{"MENGI_REPO"}}
}

// RateLimitFlag is --rate-limit, the requests per second each API key may
// make.
func RateLimitFlag() *cli.Float64Flag {
	return &cli.Float64Flag{Name: "rate-limit", Value: DefaultRateLimit, EnvVars: []string{"MENGI_RATE_LIMIT"},
		Usage: "requests per second each API key may make, with a burst of two seconds' worth; beyond it 429 with Retry-After (0: no limit)",
		Action: func(_ *cli.Context, v float64) error {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("--rate-limit %v: want requests per second, 0 or more (0: no limit)", v)
			}
			return nil
		}}
}

// DefaultRateLimit is --rate-limit's default: far above what a person or
// a pipeline sends, far below what one key could take from the others.
const DefaultRateLimit = 100

// LogFlag is --log-level.
func LogFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info", EnvVars: []string{"MENGI_LOG_LEVEL"}}
}

// Extensions are what the mengi binary adds to the server's commands:
// pull request checks, which render charts (code mengi-server does not
// link).
type Extensions struct {
	// Flags are added to serve.
	Flags []cli.Flag
	// PullRequests returns the checker of pull requests for a process
	// on a remote, or nil when it checks none.
	PullRequests func(c *cli.Context, repos *registry.Repos, remote *Remote, gr *gitremote.Remote, log *slog.Logger) (PullRequestChecker, error)
}

// PullRequestChecker checks the pull requests the webhook queues until
// Run's context ends (prcheck.Checker).
type PullRequestChecker interface {
	hooks.Queue
	Run(ctx context.Context) error
}

func serveCommand(ext Extensions) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the deployments API on a Git repository",
		Flags: append(append([]cli.Flag{
			RepoFlag(),
			RegistryFlag(),
			&cli.StringFlag{Name: "listen", Usage: "address to listen on", Value: "127.0.0.1:8080", EnvVars: []string{"MENGI_LISTEN"}},
			&cli.DurationFlag{Name: "shutdown-timeout", Usage: "how long SIGTERM waits for in-flight requests", Value: 30 * time.Second},
			RateLimitFlag(),
			MaxRequestsFlag(),
			LogFlag(),
		}, RemoteFlags()...), ext.Flags...),
		Action: func(c *cli.Context) error {
			log, err := NewLogger(c.String("log-level"))
			if err != nil {
				return err
			}
			remote, err := RemoteFromFlags(c)
			if err != nil {
				return err
			}
			repos, gr, err := OpenRepos(c.Context, c.String("repo"), c.String("registry"), remote, log)
			if err != nil {
				return err
			}
			defer repos.Close()
			if err := InstallPushCheck(repos, log); err != nil {
				return err
			}
			var prs PullRequestChecker
			if gr != nil && ext.PullRequests != nil {
				if prs, err = ext.PullRequests(c, repos, remote, gr, log); err != nil {
					return err
				}
			}
			return ServeWithChecks(c.Context, repos, remote, prs, log, func(ctx context.Context, mounts []Mount) error {
				return ServeAPI(ctx, repos, c.String("listen"), c.Duration("shutdown-timeout"), c.Float64("rate-limit"), c.Int("max-requests"), log, nil, mounts...)
			})
		},
	}
}

// ServeWithChecks runs serve with the webhook mounted (when the remote
// has a secret) and the pull request checker running beside it (when not
// nil), stopping the checker when serve returns.
func ServeWithChecks(ctx context.Context, repos *registry.Repos, remote *Remote, prs PullRequestChecker, log *slog.Logger, serve func(context.Context, []Mount) error) error {
	var queue hooks.Queue
	if prs != nil {
		queue = prs
	}
	h, err := HooksHandler(remote, repos.Deployments, queue, log)
	if err != nil {
		return err
	}
	var mounts []Mount
	if h != nil {
		mounts = append(mounts, Mount{Path: hooks.Path, Handler: h})
	} else if remote != nil {
		log.Info("no --webhook-secret-file: the remote is fetched every --poll-interval only", "poll", remote.Poll)
	}
	if remote == nil {
		// The repository is local: serve it to engineers over git's smart
		// HTTP (with --remote the forge does).
		git, err := GitMount(repos, log)
		if err != nil {
			return err
		}
		if git != nil {
			mounts = append(mounts, *git)
		}
	}
	if prs == nil {
		return serve(ctx, mounts)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- prs.Run(ctx) }()
	err = serve(ctx, mounts)
	cancel()
	return errors.Join(err, <-done)
}

// Read deadlines of a request's body, from when its headers were read:
// an API request's, and a mount's (a git push may carry tens of MiB).
const (
	APIReadTimeout   = 30 * time.Second
	MountReadTimeout = 10 * time.Minute
)

// IdleTimeout closes a keep-alive connection that sent no request for
// this long.
const IdleTimeout = 60 * time.Second

// Mount is a handler served beside the API at Path: that path alone, or
// every path under it when Path ends with a slash.
type Mount struct {
	Path    string
	Handler http.Handler
	// LogAttrs, when set, adds attributes to the "listening" log line
	// (a URL made with the bound address).
	LogAttrs func(addr string) []any
}

func (m Mount) matches(path string) bool {
	return path == m.Path || (strings.HasSuffix(m.Path, "/") && strings.HasPrefix(path, m.Path))
}

// GitMount serves the deployments repository over git's smart HTTP under
// /git/ (package githttp); nil when git is not on PATH, which leaves the
// API working.
func GitMount(repos *registry.Repos, log *slog.Logger) (*Mount, error) {
	git, err := githttp.New(githttp.Options{RepoDir: repos.Deployments.Dir(), Auth: repos.Registry, Logger: log, Yielder: repos.Deployments})
	switch {
	case errors.Is(err, exec.ErrNotFound):
		log.Warn("the git endpoint is off: git is not on PATH", "err", err)
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &Mount{Path: githttp.Prefix, Handler: git, LogAttrs: func(addr string) []any {
		return []any{"git", CloneURL(addr)}
	}}, nil
}

// ServeAPI serves the API, and the handlers of mounts at their paths,
// until ctx ends, then lets in-flight requests (and so their commits)
// finish before returning. At most maxRequests are handled at once, API
// and mounts together (MaxRequests; 0: no cap). ready, when set, is
// called with the bound address.
func ServeAPI(ctx context.Context, repos *registry.Repos, addr string, grace time.Duration, rateLimit float64, maxRequests int, log *slog.Logger, ready func(addr string), mounts ...Mount) error {
	apiHandler := api.New(repos.Deployments, repos.Registry, api.Options{Logger: log, RateLimit: rateLimit})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for _, m := range mounts {
			if m.matches(r.URL.Path) {
				rc.SetReadDeadline(time.Now().Add(MountReadTimeout))
				m.Handler.ServeHTTP(w, r)
				return
			}
		}
		// An API body is at most 1 MiB: a client that takes longer to send
		// it holds a connection for nothing.
		rc.SetReadDeadline(time.Now().Add(APIReadTimeout))
		apiHandler.ServeHTTP(w, r)
	})
	attrs := func(addr string) []any {
		a := []any{"repo", repos.Deployments.Dir(), "registry", repos.Registry.Dir()}
		for _, m := range mounts {
			if m.LogAttrs != nil {
				a = append(a, m.LogAttrs(addr)...)
			}
		}
		return a
	}
	return Serve(ctx, "API", addr, newRequestLimit(maxRequests, log).wrap(handler), grace, log, ready, attrs)
}

// Serve serves handler on addr until ctx ends, then lets in-flight
// requests finish (for at most grace) before returning; it logs
// "<name> listening" with the bound address and attrs(address), when set.
// Its limits: the deadlines above, MaxHeaderBytes, MaxConnections; the
// requests net/http refuses before a handler runs are answered in JSON
// (jsonErrorConn).
func Serve(ctx context.Context, name, addr string, handler http.Handler, grace time.Duration, log *slog.Logger, ready func(addr string), attrs func(addr string) []any) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnState:         newConnLimit(MaxConnections).track,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// net/http's own answers to requests it cannot read (400, 431, 501,
	// 505) are plain text: the connections answer them in JSON.
	ln = newJSONErrorListener(ln, srv.MaxHeaderBytes)
	line := []any{"addr", ln.Addr().String()}
	if attrs != nil {
		line = append(line, attrs(ln.Addr().String())...)
	}
	log.Info(name+" listening", line...)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CloneURL is the URL of the deployments repository served at addr.
func CloneURL(addr string) string { return "http://" + addr + githttp.Prefix + githttp.RepoName }

// NewLogger returns a text logger on stderr at the named level (debug,
// info, warn or error).
func NewLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

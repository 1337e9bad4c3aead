package servercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/githttp"
	"github.com/mengi-cloud/gitops/registry"
)

// RepoFlag is --repo, the bare repository a command works on.
func RepoFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "repo", Usage: "bare Git repository holding the deployments (created when missing)", Required: true, EnvVars: []string{"MENGI_REPO"}}
}

// LogFlag is --log-level.
func LogFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info", EnvVars: []string{"MENGI_LOG_LEVEL"}}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the deployments API on a Git repository",
		Flags: []cli.Flag{
			RepoFlag(),
			RegistryFlag(),
			&cli.StringFlag{Name: "listen", Usage: "address to listen on", Value: "127.0.0.1:8080", EnvVars: []string{"MENGI_LISTEN"}},
			&cli.DurationFlag{Name: "shutdown-timeout", Usage: "how long SIGTERM waits for in-flight requests", Value: 30 * time.Second},
			LogFlag(),
		},
		Action: func(c *cli.Context) error {
			log, err := NewLogger(c.String("log-level"))
			if err != nil {
				return err
			}
			repos, err := registry.OpenRepos(c.Context, c.String("repo"), c.String("registry"), log)
			if err != nil {
				return err
			}
			defer repos.Close()
			if err := InstallPushCheck(repos); err != nil {
				return err
			}
			return ServeAPI(c.Context, repos, c.String("listen"), c.Duration("shutdown-timeout"), log, true, nil)
		},
	}
}

// ServeAPI serves the API until ctx ends, then lets in-flight requests (and
// so their commits) finish before returning. With gitHTTP it also serves
// the deployments repository over git's smart HTTP under /git/ (package
// githttp; off when a forge serves the repository, and when git is not
// on PATH). ready, when set, is called with the bound address.
func ServeAPI(ctx context.Context, repos *registry.Repos, addr string, grace time.Duration, log *slog.Logger, gitHTTP bool, ready func(addr string)) error {
	var handler http.Handler = api.New(repos.Deployments, repos.Registry, api.Options{Logger: log})
	if gitHTTP {
		git, err := githttp.New(githttp.Options{RepoDir: repos.Deployments.Dir(), Auth: repos.Registry, Logger: log})
		switch {
		case errors.Is(err, exec.ErrNotFound):
			// The API works without git; say why /git/ is not served.
			log.Warn("the git endpoint is off: git is not on PATH", "err", err)
			gitHTTP = false
		case err != nil:
			return err
		default:
			handler = withGit(handler, git)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	attrs := []any{"addr", ln.Addr().String(), "repo", repos.Deployments.Dir(), "registry", repos.Registry.Dir()}
	if gitHTTP {
		attrs = append(attrs, "git", CloneURL(ln.Addr().String()))
	}
	log.Info("API listening", attrs...)
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

// withGit sends requests under githttp.Prefix to git and every other to
// api, whose routing stays as it is.
func withGit(api, git http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, githttp.Prefix) {
			git.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
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

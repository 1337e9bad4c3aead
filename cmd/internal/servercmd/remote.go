package servercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/hooks"
	"github.com/mengi-cloud/gitops/registry"
)

// RemoteFlags are the flags of a process whose deployments repository
// lives on a Git server: --remote, --remote-token-file, --poll-interval
// and --webhook-secret-file.
func RemoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "remote", EnvVars: []string{"MENGI_REMOTE"},
			Usage: "the deployments repository's home on a Git server (https://, http:// or file://); --repo becomes this process's working mirror of it"},
		&cli.StringFlag{Name: "remote-token-file", EnvVars: []string{"MENGI_REMOTE_TOKEN_FILE"},
			Usage: "file holding the token for --remote (or set MENGI_REMOTE_TOKEN); never put it in the URL"},
		&cli.DurationFlag{Name: "poll-interval", Value: 10 * time.Second, EnvVars: []string{"MENGI_POLL_INTERVAL"},
			Usage: "how often --remote is fetched when no webhook says it moved"},
		&cli.StringFlag{Name: "webhook-secret-file", EnvVars: []string{"MENGI_WEBHOOK_SECRET_FILE"},
			Usage: "file holding the forge webhook's secret: POST /hooks/git is served and deliveries must be signed with it"},
	}
}

// Remote is the Git server of the flags of RemoteFlags.
type Remote struct {
	URL   string
	Token string `json:"-"`
	Poll  time.Duration
	// WebhookSecret is nil when no webhook is configured.
	WebhookSecret []byte `json:"-"`
}

// RemoteFromFlags reads the flags of RemoteFlags (nil, nil without
// --remote).
func RemoteFromFlags(c *cli.Context) (*Remote, error) {
	url := c.String("remote")
	if url == "" {
		for _, f := range []string{"remote-token-file", "webhook-secret-file"} {
			if c.String(f) != "" {
				return nil, fmt.Errorf("--%s needs --remote (without it the repository is local and served at /git/deployments.git)", f)
			}
		}
		return nil, nil
	}
	if _, err := gitremote.ParseURL(url); err != nil {
		return nil, fmt.Errorf("--remote: %w", err)
	}
	if c.Duration("poll-interval") <= 0 {
		return nil, fmt.Errorf("--poll-interval %s: give a positive duration", c.Duration("poll-interval"))
	}
	r := &Remote{URL: url, Poll: c.Duration("poll-interval")}
	var err error
	if f := c.String("remote-token-file"); f != "" {
		if r.Token, err = readSecret(f, "--remote-token-file"); err != nil {
			return nil, err
		}
	} else {
		r.Token = strings.TrimSpace(os.Getenv("MENGI_REMOTE_TOKEN"))
	}
	if f := c.String("webhook-secret-file"); f != "" {
		secret, err := readSecret(f, "--webhook-secret-file")
		if err != nil {
			return nil, err
		}
		r.WebhookSecret = []byte(secret)
	}
	return r, nil
}

// readSecret reads a one-line secret from a file.
func readSecret(path, flag string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", flag, path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s: %s holds more than one line", flag, path)
	}
	return s, nil
}

// OpenRepos opens the deployments repository repo and the registry reg;
// with a remote (not nil), repo is the working mirror of remote.URL.
func OpenRepos(ctx context.Context, repo, reg string, remote *Remote, log *slog.Logger) (*registry.Repos, *gitremote.Remote, error) {
	if remote == nil {
		repos, err := registry.OpenRepos(ctx, repo, reg, log)
		return repos, nil, err
	}
	gr, err := gitremote.New(repo, gitremote.Options{URL: remote.URL, Token: remote.Token, Logger: log.With("remote", remote.URL)})
	if err != nil {
		return nil, nil, fmt.Errorf("--remote: %w", err)
	}
	repos, err := registry.OpenMirrors(ctx, repo, reg, log, gr, remote.Poll)
	if err != nil {
		if errors.Is(err, gitstore.ErrRemoteUnavailable) {
			return nil, nil, fmt.Errorf("%w (check --remote, the token and that the server is up)", err)
		}
		return nil, nil, err
	}
	log.Info("the deployments repository is a mirror of the remote", "remote", gr.URL(), "mirror", repo, "poll", remote.Poll)
	return repos, gr, nil
}

// HooksHandler is the handler of POST /hooks/git for a remote with a
// webhook secret (nil otherwise): a push fetches store at once, a pull
// request goes to prs (nil: not checked in this process).
func HooksHandler(remote *Remote, store hooks.Syncer, prs hooks.Queue, log *slog.Logger) (http.Handler, error) {
	if remote == nil || remote.WebhookSecret == nil {
		return nil, nil
	}
	return hooks.New(hooks.Options{Secret: remote.WebhookSecret, Store: store, PullRequests: prs, Logger: log.With("component", "hooks")})
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
)

// Repos are the two repositories a process works on: the deployments,
// which engineers change through pull requests, and the operator's
// registry.
type Repos struct {
	Deployments *gitstore.Store
	Registry    *Registry
}

// OpenRepos opens the deployments repository at repo and the registry at
// reg (DefaultDir(repo) when empty), creating them when missing,
// and moves users and clusters an earlier version kept among the
// deployments into the registry.
func OpenRepos(ctx context.Context, repo, reg string, log *slog.Logger) (*Repos, error) {
	return OpenMirrors(ctx, repo, reg, log, nil, 0)
}

// OpenMirrors opens the repositories as OpenRepos does; with a remote
// (not nil), the deployments repository at repo is the process's working
// mirror of it: every batch of commits is pushed there before it is
// acknowledged, and the remote is fetched every poll (gitstore.Options
// Remote, RemotePoll). The registry stays local to the operator.
func OpenMirrors(ctx context.Context, repo, reg string, log *slog.Logger, remote gitstore.Remote, poll time.Duration) (*Repos, error) {
	if reg == "" {
		reg = DefaultDir(repo)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deployments, err := gitstore.Open(repo, gitstore.Options{Logger: log, Holds: gitstore.HoldsDeployments, Remote: remote, RemotePoll: poll})
	if err != nil {
		return nil, err
	}
	r, err := Open(reg, gitstore.Options{Logger: log.With("repository", "registry")})
	if err != nil {
		deployments.Close()
		return nil, err
	}
	repos := &Repos{Deployments: deployments, Registry: r}
	moved, err := r.TakeOver(ctx, deployments)
	if err != nil {
		repos.Close()
		return nil, fmt.Errorf("move users and clusters to the registry: %w", err)
	}
	if moved > 0 {
		log.Info("users and clusters moved from the deployments repository to the registry", "files", moved, "registry", r.Dir())
	}
	return repos, nil
}

// Close closes both repositories.
func (r *Repos) Close() error {
	return errors.Join(r.Deployments.Close(), r.Registry.Close())
}

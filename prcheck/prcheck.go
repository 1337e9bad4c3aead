// Package prcheck checks a pull request against the deployments branch:
// it fetches the PR's head from the store's own remote, runs the push
// check (pushcheck: schema, paths, registered cluster and owner, an owner
// and an id that never change) on what the PR changes since its merge
// base, renders every deployment file it touches for base and head, and
// reports on the forge: a commit status (context mengi/validate) and one
// comment, edited in place on later pushes, holding the problems and the
// rendered diff of values_yaml and of each Kubernetes object.
//
// Checks run one at a time in Run; a pull request queued again before its
// check starts is checked once, at its newest head.
package prcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/forge"
	"github.com/mengi-cloud/gitops/hooks"
	"github.com/mengi-cloud/gitops/pushcheck"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// Context is the commit status's context; a branch protection rule makes
// it required.
const Context = "mengi/validate"

// CheckTimeout bounds one pull request's check, fetches and renders
// included.
const CheckTimeout = 5 * time.Minute

// Marker starts the comment the check keeps up to date.
const Marker = "<!-- mengi/validate -->"

// Fetcher brings commits from the remote into the local repository
// (gitremote.Remote).
type Fetcher interface {
	// Fetch fetches the deployments branch and returns its head.
	Fetch(ctx context.Context) (plumbing.Hash, error)
	// FetchRef fetches a ref of the remote and returns its commit.
	FetchRef(ctx context.Context, ref string) (plumbing.Hash, error)
}

// Registry is what the check needs of the operator's registry.
type Registry interface {
	pushcheck.Admitter
	Cluster(id string) *schema.Cluster
}

// Renderer renders deployments as the agent does (render.Renderer).
type Renderer interface {
	Render(ctx context.Context, d *schema.Deployment, c *schema.Cluster) (*render.Release, error)
}

// Reporter posts the outcome on the forge.
type Reporter interface {
	// SetStatus sets the commit status Context of sha: state is pending,
	// success, failure or error.
	SetStatus(ctx context.Context, sha, state, description string) error
	// UpsertComment edits the PR's comment holding Marker, or adds one.
	UpsertComment(ctx context.Context, pr int, body string) error
}

// Options configure a Checker.
type Options struct {
	GitDir      string // the local repository the Fetcher fetches into
	Remote      Fetcher
	Registry    Registry
	Renderer    Renderer
	Reporter    Reporter
	KubeVersion string // default render.DefaultKubeVersion
	Logger      *slog.Logger
}

// Checker checks pull requests.
type Checker struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	pending map[int]hooks.PullRequest
	order   []int
	wake    chan struct{}
}

// New returns a Checker; Run does the checks.
func New(opts Options) (*Checker, error) {
	if opts.GitDir == "" || opts.Remote == nil || opts.Registry == nil || opts.Renderer == nil || opts.Reporter == nil {
		return nil, errors.New("prcheck: GitDir, Remote, Registry, Renderer and Reporter are required")
	}
	if opts.KubeVersion == "" {
		opts.KubeVersion = render.DefaultKubeVersion
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{opts: opts, log: opts.Logger, pending: map[int]hooks.PullRequest{}, wake: make(chan struct{}, 1)}, nil
}

// Enqueue queues a pull request for its check (hooks.Queue).
func (c *Checker) Enqueue(pr hooks.PullRequest) {
	c.mu.Lock()
	if _, ok := c.pending[pr.Number]; !ok {
		c.order = append(c.order, pr.Number)
	}
	c.pending[pr.Number] = pr
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest queued pull request.
func (c *Checker) next() (hooks.PullRequest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) == 0 {
		return hooks.PullRequest{}, false
	}
	n := c.order[0]
	c.order = c.order[1:]
	pr := c.pending[n]
	delete(c.pending, n)
	return pr, true
}

// Run checks queued pull requests until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	for {
		for pr, ok := c.next(); ok; pr, ok = c.next() {
			if err := c.CheckAndReport(ctx, pr.Number); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.log.Error("pull request check failed", "pr", pr.Number, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		}
	}
}

// CheckAndReport checks pull request n at its current head and posts the
// status and the comment.
func (c *Checker) CheckAndReport(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	head, err := c.opts.Remote.FetchRef(ctx, fmt.Sprintf("refs/pull/%d/head", n))
	if err != nil {
		return fmt.Errorf("fetch pull request #%d: %w", n, err)
	}
	if head.IsZero() {
		return fmt.Errorf("pull request #%d: the remote has no refs/pull/%d/head", n, n)
	}
	if err := c.opts.Reporter.SetStatus(ctx, head.String(), "pending", "checking the deployment files"); err != nil {
		c.log.Warn("pending status not posted", "pr", n, "err", err)
	}
	rep, err := c.Check(ctx, n, head)
	if err != nil {
		desc := "the check could not run: " + err.Error()
		if serr := c.opts.Reporter.SetStatus(ctx, head.String(), "error", desc); serr != nil {
			c.log.Warn("error status not posted", "pr", n, "err", serr)
		}
		return err
	}
	// The status goes out even when the comment does not (a required
	// check must not stay pending).
	commentErr := c.opts.Reporter.UpsertComment(ctx, n, rep.Markdown())
	if commentErr != nil {
		commentErr = fmt.Errorf("comment on pull request #%d: %w", n, commentErr)
	}
	if err := c.opts.Reporter.SetStatus(ctx, head.String(), rep.State(), rep.Summary()); err != nil {
		return errors.Join(commentErr, fmt.Errorf("status of pull request #%d: %w", n, err))
	}
	if commentErr != nil {
		return commentErr
	}
	c.log.Info("pull request checked", "pr", n, "head", head.String(), "state", rep.State(), "problems", len(rep.Problems))
	return nil
}

// Check checks pull request n at commit head against the remote's
// deployments branch.
func (c *Checker) Check(ctx context.Context, n int, head plumbing.Hash) (*Report, error) {
	base, err := c.opts.Remote.Fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch the deployments branch: %w", err)
	}
	rep := &Report{PR: n, Head: head.String(), Base: base.String()}
	old := base.String()
	if base.IsZero() {
		old = zero
	} else if old, err = c.mergeBase(ctx, base, head); err != nil {
		return nil, err
	} else if old == "" {
		rep.Problems = append(rep.Problems, pushcheck.Problem{Path: "(pull request)",
			FieldError: schema.FieldError{Msg: "the pull request shares no history with the deployments branch"}})
		return rep, nil
	}
	rep.MergeBase = old
	res, err := pushcheck.Inspect(ctx, c.opts.GitDir, old, head.String(), c.opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("check pull request #%d: %w", n, err)
	}
	rep.Problems = res.Problems
	invalid := map[string]bool{}
	for _, p := range res.Problems {
		invalid[p.Path] = true
	}
	for _, f := range res.Files {
		fr, problem := c.renderFile(ctx, f, invalid[f.Path])
		rep.Files = append(rep.Files, fr)
		if problem != nil {
			rep.Problems = append(rep.Problems, *problem)
		}
	}
	return rep, nil
}

// zero is git's id of no commit.
const zero = "0000000000000000000000000000000000000000"

// mergeBase returns the best common ancestor of base and head, "" when
// there is none.
func (c *Checker) mergeBase(ctx context.Context, base, head plumbing.Hash) (string, error) {
	cmd := exec.CommandContext(ctx, "git", "--git-dir", c.opts.GitDir, "merge-base", base.String(), head.String())
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("git merge-base: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ForgeReporter posts reports through a forge client: the status with
// context Context, the comment marked with Marker.
func ForgeReporter(f forge.Reporter) Reporter { return forgeReporter{f} }

type forgeReporter struct{ f forge.Reporter }

func (r forgeReporter) SetStatus(ctx context.Context, sha, state, description string) error {
	return r.f.SetStatus(ctx, sha, forge.Status{State: forge.State(state), Context: Context, Description: description})
}

func (r forgeReporter) UpsertComment(ctx context.Context, pr int, body string) error {
	return r.f.UpsertComment(ctx, pr, Marker, body)
}

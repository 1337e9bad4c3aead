package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/gitstore"
)

// SyncedRef is where the agent keeps the last commit it has taken in, in
// the repository itself, so a restart continues from there.
const SyncedRef = "refs/mengi/agent/synced"

// Options configure an Agent.
type Options struct {
	// Store is the deployments repository. Required.
	Store *gitstore.Store
	// Registry gives the clusters and who may deploy where (package
	// registry). Required.
	Registry Registry
	// Renderer renders deployments (package render). Required.
	Renderer Renderer
	// Connect opens cluster connections (package cluster). Required.
	Connect Connector
	// Workers bounds the deployments reconciled at once; default 4.
	Workers int
	// HealthTimeout bounds the wait for a release to become healthy (and
	// for an uninstall to finish); default 2m.
	HealthTimeout time.Duration
	// DriftInterval is how often running releases are checked for changes
	// made by hand on the cluster; default 30s. Negative disables it.
	DriftInterval time.Duration
	// PruneHoldShare is the share of a cluster's deployments above which a
	// removal of at least two of them (their files gone) waits for an
	// operator's `mengi prune --confirm`; default 0.25. A removal of all of
	// a cluster's deployments always waits. 1 holds only those.
	PruneHoldShare float64
	// ResyncInterval is how often every deployment is re-checked as a
	// safety net (cheap when nothing changed); default 5m.
	ResyncInterval time.Duration
	// Author signs the agent's commits; default "Mengi Agent <agent@mengi.local>".
	Author gitstore.Signature
	// Logger receives one line per step, with the deployment and commit.
	Logger *slog.Logger
	// Now gives timestamps; default time.Now.
	Now func() time.Time
}

// Agent reconciles the deployments of a repository onto their clusters.
type Agent struct {
	opts     Options
	store    *gitstore.Store
	reg      Registry
	render   Renderer
	log      *slog.Logger
	queue    *queue
	status   *statusWriter
	clusters *clusters

	mu        sync.Mutex
	driftNote map[string]string // path → drift found, for the next status
	pruneMu   sync.Mutex        // one prune at a time
}

// New checks the options and makes an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Store == nil || opts.Registry == nil || opts.Renderer == nil || opts.Connect == nil {
		return nil, fmt.Errorf("agent: Store, Registry, Renderer and Connect are required")
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 2 * time.Minute
	}
	if opts.DriftInterval == 0 {
		opts.DriftInterval = 30 * time.Second
	}
	if opts.PruneHoldShare <= 0 {
		opts.PruneHoldShare = 0.25
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 5 * time.Minute
	}
	if opts.Author.Email == "" {
		opts.Author = gitstore.Signature{Name: "Mengi Agent", Email: "agent@mengi.local"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger.With("component", "agent")
	a := &Agent{
		opts: opts, store: opts.Store, reg: opts.Registry, render: opts.Renderer, log: log,
		queue:     newQueue(),
		status:    newStatusWriter(opts.Store, opts.Registry, opts.Author, log),
		driftNote: map[string]string{},
	}
	a.clusters = newClusters(opts.Registry, opts.Connect, opts.Author, log, a.now)
	return a, nil
}

func (a *Agent) now() time.Time { return a.opts.Now().UTC().Truncate(time.Second) }

// Run reconciles until ctx ends. It first re-checks every deployment and
// prunes releases whose files are gone (whatever happened while it was
// not running), then follows the branch commit by commit.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.queue.close()

	wg.Add(1)
	go func() {
		defer wg.Done()
		a.status.run(ctx)
	}()
	for range a.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.work(ctx)
		}()
	}

	synced, err := a.store.Ref(SyncedRef)
	if err != nil {
		return fmt.Errorf("agent: read %s: %w", SyncedRef, err)
	}
	changed, registryChanged := a.store.Changed(), a.reg.Changed()
	head := a.store.Head()
	a.log.Info("agent started", "synced", short(synced), "head", short(head), "workers", a.opts.Workers)
	a.resync(ctx)
	a.prune(ctx)
	a.markSynced(synced, head)
	synced = head

	resync := time.NewTicker(a.opts.ResyncInterval)
	defer resync.Stop()
	var drift <-chan time.Time
	if a.opts.DriftInterval > 0 {
		t := time.NewTicker(a.opts.DriftInterval)
		defer t.Stop()
		drift = t.C
	}
	for {
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping")
			return nil
		case <-changed:
			changed = a.store.Changed()
			head := a.store.Head()
			if err := a.follow(ctx, synced, head); err != nil {
				a.log.Error("following the branch failed; re-checking everything", "err", err)
				a.resync(ctx)
			}
			a.markSynced(synced, head)
			synced = head
		case <-registryChanged:
			// A cluster's connection, or who may deploy where, changed:
			// every deployment is checked again (cheap when nothing did).
			registryChanged = a.reg.Changed()
			a.clusters.refresh()
			a.resync(ctx)
			a.prune(ctx) // an operator may have confirmed a held removal
		case <-resync.C:
			a.resync(ctx)
			a.prune(ctx)
		case <-drift:
			a.checkDrift(ctx)
		}
	}
}

// work runs reconciles handed out by the queue until ctx ends.
func (a *Agent) work(ctx context.Context) {
	for {
		path, force, ok := a.queue.get(ctx)
		if !ok {
			return
		}
		a.reconcile(ctx, path, force)
		a.queue.done(path)
	}
}

// follow queues the deployments whose files changed between two commits,
// skipping file versions the agent itself wrote (its status commits).
func (a *Agent) follow(ctx context.Context, from, to plumbing.Hash) error {
	changes, err := a.store.Diff(from, to)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if !gitstore.IsDeploymentPath(ch.Path) || (!ch.To.IsZero() && a.status.isOwn(ch.To)) {
			continue
		}
		a.queue.add(ch.Path, false)
	}
	return nil
}

// resync queues every deployment.
func (a *Agent) resync(ctx context.Context) {
	for _, p := range a.deploymentPaths() {
		a.queue.add(p, false)
	}
}

func (a *Agent) deploymentPaths() []string {
	var paths []string
	a.store.Read(func(v *gitstore.View) {
		v.Each(func(r *gitstore.Record) {
			if gitstore.IsDeploymentPath(r.Path) {
				paths = append(paths, r.Path)
			}
		})
	})
	return paths
}

// markSynced records head as taken in.
func (a *Agent) markSynced(old, head plumbing.Hash) {
	if old == head {
		return
	}
	if err := a.store.SetRef(SyncedRef, old, head); err != nil {
		a.log.Warn("recording the synced commit failed", "err", err)
	}
}

// Idle reports whether the agent has nothing queued or running.
func (a *Agent) Idle() bool { return a.queue.idle() }

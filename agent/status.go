package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// statusUpdate is a status to write into one deployment file, unless its
// spec changed meanwhile (then the status would describe an old spec).
type statusUpdate struct {
	path   string
	id     string
	digest string // spec digest the status is about; "" for any
	status schema.Status
	// remove deletes the file instead (a deletion that finished).
	remove bool
	done   chan error
}

// statusWriter writes status updates into the repository, the ones that
// arrive together in one commit, authored by the agent.
type statusWriter struct {
	store   *gitstore.Store
	reg     Registry
	author  gitstore.Signature
	log     *slog.Logger
	window  time.Duration
	updates chan *statusUpdate

	mu  sync.Mutex
	own map[plumbing.Hash]bool // blobs the agent wrote: its own commits
}

func newStatusWriter(store *gitstore.Store, reg Registry, author gitstore.Signature, log *slog.Logger) *statusWriter {
	return &statusWriter{store: store, reg: reg, author: author, log: log, window: 20 * time.Millisecond,
		updates: make(chan *statusUpdate, 1024), own: map[plumbing.Hash]bool{}}
}

// write queues u and waits until it is committed (or skipped).
func (w *statusWriter) write(ctx context.Context, u *statusUpdate) error {
	u.done = make(chan error, 1)
	select {
	case w.updates <- u:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-u.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isOwn reports (once) whether blob is a file version the agent wrote.
func (w *statusWriter) isOwn(blob plumbing.Hash) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.own[blob] {
		delete(w.own, blob)
		return true
	}
	return false
}

// run commits queued updates until ctx ends; updates that arrive within a
// short window of each other share one commit.
func (w *statusWriter) run(ctx context.Context) {
	for {
		var batch []*statusUpdate
		select {
		case <-ctx.Done():
			return
		case u := <-w.updates:
			batch = append(batch, u)
		}
		timer := time.NewTimer(w.window)
	collect:
		for len(batch) < 256 {
			select {
			case u := <-w.updates:
				batch = append(batch, u)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		err := w.commit(context.WithoutCancel(ctx), batch)
		for _, u := range batch {
			u.done <- err
		}
	}
}

// commit writes a batch of updates as one commit. The last update of a
// path wins.
func (w *statusWriter) commit(ctx context.Context, batch []*statusUpdate) error {
	latest := map[string]*statusUpdate{}
	for _, u := range batch {
		latest[u.path] = u
	}
	paths := slices.Sorted(maps.Keys(latest))
	res, err := w.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		var changes []gitstore.Change
		var lines []string
		var trailers []gitstore.Trailer
		for _, p := range paths {
			u := latest[p]
			rec := v.Record(p)
			if rec == nil || !rec.HasDeployment() || rec.DeploymentID() != u.id {
				continue // gone or replaced meanwhile
			}
			d := rec.Deployment()
			if d == nil || u.digest != "" && rec.Err() == nil && d.Spec.Digest() != u.digest {
				continue // the spec changed meanwhile; it will be reconciled again
			}
			name := subjectPath(w.reg.Cluster(d.Spec.ClusterID), d)
			if u.remove {
				changes = append(changes, gitstore.Change{Path: p})
				lines = append(lines, name+": deleted")
			} else {
				data, err := w.store.ReadBlob(rec.Blob())
				if err != nil {
					return nil, err
				}
				if cur, _ := schema.ReadStatus(data); cur != nil && sameStatus(cur, &u.status) {
					continue
				}
				content, err := schema.SetStatus(data, &u.status)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				changes = append(changes, gitstore.Change{Path: p, Content: content})
				lines = append(lines, name+": "+describeStatus(&u.status))
			}
			trailers = append(trailers, gitstore.Trailer{Key: "Deployment-Id", Value: u.id})
		}
		if len(changes) == 0 {
			return nil, nil
		}
		subject := "deployment " + lines[0]
		body := ""
		if len(lines) > 1 {
			subject = fmt.Sprintf("status of %d deployments", len(lines))
			body = strings.Join(lines, "\n")
		}
		return &gitstore.Commit{Author: w.author, Message: gitstore.Message(subject, body, trailers...), Changes: changes}, nil
	})
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if res.Changed {
		w.mu.Lock()
		for _, r := range res.Records {
			if r != nil {
				w.own[r.Blob()] = true
			}
		}
		w.mu.Unlock()
		w.log.Info("status committed", "commit", res.Commit.String()[:10], "deployments", len(paths))
	}
	return nil
}

// sameStatus reports whether writing b over a would change nothing a
// reader cares about (timestamps aside).
func sameStatus(a, b *schema.Status) bool {
	return a.Phase == b.Phase && a.Reason == b.Reason && a.ErrorMessage == b.ErrorMessage &&
		a.EndpointURL == b.EndpointURL && a.ValuesYAML == b.ValuesYAML && a.SpecDigest == b.SpecDigest &&
		a.Drift == b.Drift && a.AppliedCommit == b.AppliedCommit
}

func describeStatus(s *schema.Status) string {
	out := "status " + string(s.Phase)
	if s.Reason != "" {
		out += " (" + s.Reason + ")"
	}
	return out
}

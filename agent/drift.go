package agent

import (
	"context"
	"errors"
	"strings"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// checkDrift looks at every applied deployment's objects on its cluster; a
// release changed or deleted by hand is re-applied (self-heal) and the
// change is reported in its status (drift, drift_corrected_at).
func (a *Agent) checkDrift(ctx context.Context) {
	type target struct{ path, clusterID, name string }
	// Candidates by phase under the store's lock; their deployments are
	// unpacked after it (records do not change), so a scan of many
	// deployments does not hold up the store's writes.
	var candidates []*gitstore.Record
	a.store.Read(func(v *gitstore.View) {
		v.Each(func(r *gitstore.Record) {
			if r.Err() == nil && (r.Phase() == schema.PhaseRunning || r.Phase() == schema.PhaseStopped) {
				candidates = append(candidates, r)
			}
		})
	})
	var targets []target
	for _, r := range candidates {
		d := r.Deployment()
		if d == nil || d.Metadata.DeletionRequestedAt != nil || d.Status == nil {
			continue
		}
		if (d.Status.Phase == schema.PhaseRunning || d.Status.Phase == schema.PhaseStopped) && d.Status.SpecDigest == d.Spec.Digest() {
			targets = append(targets, target{r.Path, d.Spec.ClusterID, d.Spec.Name})
		}
	}
	conns := a.clusters.reachable(ctx)
	for _, t := range targets {
		conn := conns[t.clusterID]
		if conn == nil || ctx.Err() != nil {
			continue
		}
		items, err := conn.Drift(ctx, t.name, render.Namespace(t.name))
		if errors.Is(err, cluster.ErrReleaseNotFound) {
			// The whole release was removed by hand (helm uninstall, the
			// namespace deleted): install it again.
			items, err = []string{"release " + render.Namespace(t.name) + "/" + t.name + ": deleted"}, nil
		}
		if err != nil {
			a.log.Warn("drift check failed", "path", t.path, "err", err)
			continue
		}
		if len(items) == 0 {
			continue
		}
		note := strings.Join(items, "; ")
		a.log.Warn("drift found; re-applying", "path", t.path, "drift", note)
		a.mu.Lock()
		a.driftNote[t.path] = note
		a.mu.Unlock()
		a.queue.add(t.path, true)
	}
}

// takeDrift returns and forgets the drift found for path.
func (a *Agent) takeDrift(path string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	note := a.driftNote[path]
	delete(a.driftNote, path)
	return note
}

package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// prune uninstalls the releases the agent owns (label mengi.cloud/managed)
// that no deployment file asks for any more: the file was deleted by a
// commit, or renamed, or moved its deployment elsewhere. Releases without
// the label are never touched, nor are releases applied for another
// cluster record (label mengi.cloud/cluster-id): the Kubernetes cluster
// behind a record may also be behind other records, of this repository or
// another one. A removal of many of a cluster's deployments at once waits
// for an operator (see removal.held). One prune runs at a time.
func (a *Agent) prune(ctx context.Context) {
	a.pruneMu.Lock()
	defer a.pruneMu.Unlock()
	counts := a.deploymentsPerCluster()
	for clusterID, conn := range a.clusters.reachable(ctx) {
		owned, err := conn.Owned(ctx)
		if err != nil {
			a.log.Warn("listing releases failed", "cluster", clusterID, "err", err)
			continue
		}
		rm := a.planRemoval(clusterID, owned)
		rm.of = counts[clusterID] + len(rm.gone)
		a.uninstall(ctx, clusterID, conn, rm.moved, "its deployment moved")
		a.removeGone(ctx, clusterID, conn, rm)
	}
}

// removal is what one prune would remove from one cluster.
type removal struct {
	moved []cluster.Owned // their deployment lives on elsewhere (renamed, moved)
	gone  []cluster.Owned // their deployment is gone from the repository
	of    int             // deployments the cluster had: those still in the repository plus gone
}

// held reports whether the removal waits for an operator: it removes every
// deployment of the cluster, or at least two and more than share of them.
// A single deployment deleted among others, and any move, go at once.
func (r removal) held(share float64) bool {
	n := len(r.gone)
	return n > 0 && (n == r.of || n >= 2 && float64(n) > share*float64(r.of))
}

// releases names the gone releases, namespace/name, sorted.
func (r removal) releases() []string {
	out := make([]string, len(r.gone))
	for i, rel := range r.gone {
		out[i] = rel.Namespace + "/" + rel.Name
	}
	slices.Sort(out)
	return out
}

// planRemoval sorts the cluster's owned releases that no file asks for
// into moved and gone.
func (a *Agent) planRemoval(clusterID string, owned []cluster.Owned) removal {
	var rm removal
	for _, rel := range owned {
		if id, ok := rel.Labels[LabelClusterID]; ok && id != clusterID {
			continue // another cluster record's release
		}
		id := rel.Labels[LabelDeploymentID]
		switch {
		case a.wanted(clusterID, rel.Name, rel.Namespace, id):
		case a.exists(id):
			rm.moved = append(rm.moved, rel)
		default:
			rm.gone = append(rm.gone, rel)
		}
	}
	return rm
}

// removeGone uninstalls the releases of deployments gone from the
// repository, or holds them back in the cluster's status until an
// operator confirms; a confirmed hold removes the releases it lists.
func (a *Agent) removeGone(ctx context.Context, clusterID string, conn Conn, rm removal) {
	hold := a.pruneHold(clusterID)
	if !rm.held(a.opts.PruneHoldShare) {
		a.uninstall(ctx, clusterID, conn, rm.gone, "no deployment file asks for it")
		if hold != nil {
			a.setPruneHold(ctx, clusterID, nil, "removal no longer held", "")
		}
		return
	}
	names := rm.releases()
	if hold != nil && hold.Confirmed {
		var confirmed []cluster.Owned
		for _, rel := range rm.gone {
			if slices.Contains(hold.Releases, rel.Namespace+"/"+rel.Name) {
				confirmed = append(confirmed, rel)
			}
		}
		a.uninstall(ctx, clusterID, conn, confirmed, "an operator confirmed the removal of commit "+short8(hold.Commit))
		a.setPruneHold(ctx, clusterID, nil, fmt.Sprintf("removed %d deployments (confirmed)", len(confirmed)), "")
		return
	}
	if hold != nil && slices.Equal(hold.Releases, names) {
		return // held already
	}
	head := a.store.Head().String()
	a.log.Warn("removal held: confirm it with `mengi prune --confirm "+short8(head)+"`",
		"cluster", clusterID, "deployments", len(names), "of", rm.of, "releases", strings.Join(names, " "))
	next := &schema.PruneHold{Commit: head, Releases: names, Of: rm.of, Since: a.now()}
	a.setPruneHold(ctx, clusterID, next, fmt.Sprintf("removal of %d of %d deployments held (%s)", len(names), rm.of, short8(head)),
		fmt.Sprintf("Their files are gone at %s. The agent removes nothing until an operator runs\n`mengi prune --confirm %s`; restoring the files cancels the removal.\n\n%s",
			head, short8(head), strings.Join(names, "\n")))
}

// uninstall removes releases from a cluster, logging why.
func (a *Agent) uninstall(ctx context.Context, clusterID string, conn Conn, rels []cluster.Owned, why string) {
	for _, rel := range rels {
		log := a.log.With("cluster", clusterID, "release", rel.Namespace+"/"+rel.Name)
		log.Info("pruning release: " + why)
		if err := conn.Uninstall(ctx, rel.Name, rel.Namespace, a.opts.HealthTimeout); err != nil {
			log.Warn("pruning failed", "err", err)
			continue
		}
		log.Info("pruned")
	}
}

// pruneHold is the removal held for the cluster, nil when none.
func (a *Agent) pruneHold(clusterID string) *schema.PruneHold {
	if c := a.reg.Cluster(clusterID); c != nil && c.Status != nil {
		return c.Status.PruneHold
	}
	return nil
}

// setPruneHold records hold (nil: none) in the cluster's status.
func (a *Agent) setPruneHold(ctx context.Context, clusterID string, hold *schema.PruneHold, subject, body string) {
	err := a.reg.EditClusterStatus(context.WithoutCancel(ctx), clusterID, a.opts.Author, func(st *schema.ClusterStatus) (string, string) {
		if st.PruneHold == nil && hold == nil {
			return "", ""
		}
		st.PruneHold = hold
		return subject, body
	})
	if err != nil {
		a.log.Warn("recording the held removal failed", "cluster", clusterID, "err", err)
	}
}

// deploymentsPerCluster counts the repository's deployments per cluster.
func (a *Agent) deploymentsPerCluster() map[string]int {
	counts := map[string]int{}
	a.store.Read(func(v *gitstore.View) {
		v.Each(func(r *gitstore.Record) {
			if r.HasDeployment() {
				counts[r.ClusterID()]++
			}
		})
	})
	return counts
}

// exists reports whether the repository holds the deployment with this
// id anywhere.
func (a *Agent) exists(id string) bool {
	var found bool
	a.store.Read(func(v *gitstore.View) { found = v.Deployment(strings.ToLower(id)) != nil })
	return found
}

// wanted reports whether a deployment file still asks for this release.
func (a *Agent) wanted(clusterID, name, namespace, id string) bool {
	var d *schema.Deployment
	a.store.Read(func(v *gitstore.View) {
		if r := v.Deployment(strings.ToLower(id)); r != nil {
			d = r.Deployment()
		}
		if d == nil {
			// An invalid file keeps its last valid deployment under its path.
			if r := v.Record(gitstore.DeploymentPath(clusterID, name)); r != nil && r.DeploymentID() == id {
				d = r.Deployment()
			}
		}
	})
	return d != nil && d.Spec.ClusterID == clusterID && d.Spec.Name == name && render.Namespace(d.Spec.Name) == namespace
}

// short8 is a commit id's first 8 digits.
func short8(commit string) string { return commit[:min(8, len(commit))] }

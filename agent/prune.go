package agent

import (
	"context"
	"strings"

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
// another one. One prune runs at a time.
func (a *Agent) prune(ctx context.Context) {
	a.pruneMu.Lock()
	defer a.pruneMu.Unlock()
	for clusterID, conn := range a.clusters.reachable(ctx) {
		owned, err := conn.Owned(ctx)
		if err != nil {
			a.log.Warn("listing releases failed", "cluster", clusterID, "err", err)
			continue
		}
		for _, rel := range owned {
			if id, ok := rel.Labels[LabelClusterID]; ok && id != clusterID {
				continue // another cluster record's release
			}
			if a.wanted(clusterID, rel.Name, rel.Namespace, rel.Labels[LabelDeploymentID]) {
				continue
			}
			log := a.log.With("cluster", clusterID, "release", rel.Namespace+"/"+rel.Name)
			log.Info("pruning release: no deployment file asks for it")
			if err := conn.Uninstall(ctx, rel.Name, rel.Namespace, a.opts.HealthTimeout); err != nil {
				log.Warn("pruning failed", "err", err)
				continue
			}
			log.Info("pruned")
		}
	}
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

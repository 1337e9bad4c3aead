package cluster

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// Owned is a Helm release carrying mengi.cloud/managed=true, as listed by
// (*Conn).Owned: its latest revision.
type Owned struct {
	Name      string
	Namespace string
	// Labels are the release's own labels (Helm's system labels, such as
	// owner and status, left out), e.g. mengi.cloud/deployment-id.
	Labels   map[string]string
	Status   string // Helm's: deployed, failed, pending-install, ...
	Revision int
	Chart    string    // name-version of the chart
	Updated  time.Time // when the revision was made
}

// Owned lists, across all namespaces, every Helm release labelled
// mengi.cloud/managed=true, whatever its status, sorted by namespace and
// name. Releases without the label are never returned, so pruning what
// Owned lists never touches anyone else's release. Errors are
// *ReleaseError.
func (c *Conn) Owned(ctx context.Context) ([]Owned, error) {
	cfg, err := c.actionConfig(ctx, "")
	if err != nil {
		return nil, c.releaseErr("list", "", "", err)
	}
	list := action.NewList(cfg)
	list.AllNamespaces, list.All, list.Selector = true, true, LabelManaged+"=true"
	list.SetStateMask()
	rels, err := list.Run()
	if err != nil {
		return nil, c.releaseErr("list", "", "", err)
	}
	out := make([]Owned, 0, len(rels))
	for _, rel := range rels {
		o := Owned{
			Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version,
			Labels: maps.Clone(rel.Labels),
		}
		for _, l := range driver.GetSystemLabels() {
			delete(o.Labels, l)
		}
		if rel.Info != nil {
			o.Status, o.Updated = rel.Info.Status.String(), rel.Info.LastDeployed.Time
		}
		if rel.Chart != nil && rel.Chart.Metadata != nil {
			o.Chart = rel.Chart.Metadata.Name + "-" + rel.Chart.Metadata.Version
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Owned) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

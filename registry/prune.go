package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mengi-cloud/gitops/schema"
)

// Held returns the clusters whose agent holds back a removal of their
// deployments, by name.
func (r *Registry) Held() []*schema.Cluster {
	var out []*schema.Cluster
	for _, c := range r.Clusters() {
		if c.Status != nil && c.Status.PruneHold != nil {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *schema.Cluster) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ErrNoHold is ConfirmPrune's error when no removal is held at the commit.
var ErrNoHold = errors.New("no removal is held at that commit")

// ConfirmPrune confirms the removals held at the commit whose id starts
// with commit (at least 7 digits), one commit per cluster authored by the
// operator; the agent then removes the releases each hold lists. It
// returns the clusters confirmed.
func (r *Registry) ConfirmPrune(ctx context.Context, commit string) ([]*schema.Cluster, error) {
	if len(commit) < 7 {
		return nil, fmt.Errorf("--confirm %q: give at least 7 digits of the commit `mengi prune` shows", commit)
	}
	var done []*schema.Cluster
	for _, c := range r.Held() {
		h := c.Status.PruneHold
		if h.Confirmed || !strings.HasPrefix(h.Commit, strings.ToLower(commit)) {
			continue
		}
		err := r.EditClusterStatus(ctx, c.ID, Operator, func(st *schema.ClusterStatus) (string, string) {
			if st.PruneHold == nil || st.PruneHold.Commit != h.Commit {
				return "", ""
			}
			held := *st.PruneHold
			held.Confirmed = true
			st.PruneHold = &held
			return fmt.Sprintf("confirm removal of %d deployments (%s)", len(held.Releases), held.Commit[:8]), strings.Join(held.Releases, "\n")
		})
		if err != nil {
			return done, err
		}
		done = append(done, c)
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("%s: %w (`mengi prune` lists the held ones)", commit, ErrNoHold)
	}
	return done, nil
}

package cluster

import (
	"context"

	"helm.sh/helm/v3/pkg/action"
)

// ActionConfig exposes the Helm configuration of a namespace to the tests,
// which use it to make releases Apply would not (unlabelled, or left
// pending).
func (c *Conn) ActionConfig(ctx context.Context, namespace string) (*action.Configuration, error) {
	return c.actionConfig(ctx, namespace)
}

// Unconfined turns off Apply's own policy check (the dry run and the
// guards), so a test can show that the API server alone refuses what the
// check would: the deployer's RBAC and the namespace's Pod Security level.
func (c *Conn) Unconfined() { c.unconfined = true }

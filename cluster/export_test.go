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

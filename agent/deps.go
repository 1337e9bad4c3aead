package agent

import (
	"context"
	"time"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// Registry is what the agent needs of the operator's registry (package
// registry): the clusters, whether a deployment's owner may have it where
// it is, and where to record a cluster's reachability.
type Registry interface {
	// Admit returns the deployment's cluster, or an error wrapping
	// registry.ErrUnknownCluster, or a *registry.AccessError.
	Admit(d *schema.Deployment) (*schema.Cluster, error)
	Cluster(id string) *schema.Cluster
	Clusters() []*schema.Cluster
	// EditClusterStatus commits edit's change of a cluster's status.
	EditClusterStatus(ctx context.Context, id string, author gitstore.Signature, edit func(st *schema.ClusterStatus) (subject, body string)) error
	// Changed is closed when the registry changes next.
	Changed() <-chan struct{}
}

// Renderer turns a deployment into a Helm release (package render).
type Renderer interface {
	Render(ctx context.Context, d *schema.Deployment, c *schema.Cluster) (*render.Release, error)
}

// Conn is what the agent needs of one cluster (package cluster).
type Conn interface {
	Ping(ctx context.Context) error
	Apply(ctx context.Context, r cluster.Release) (*cluster.Applied, error)
	Wait(ctx context.Context, a *cluster.Applied, timeout time.Duration) error
	Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error
	Owned(ctx context.Context) ([]cluster.Owned, error)
	Drift(ctx context.Context, name, namespace string) ([]string, error)
}

// Connector opens a connection to a registered cluster.
type Connector func(c *schema.Cluster) (Conn, error)

// Labels the agent puts on every release and object it owns. It lists and
// prunes only releases that carry LabelManaged; a release that carries
// LabelClusterID is pruned only on behalf of that cluster record, so two
// records (or two repositories) pointing at one Kubernetes cluster never
// prune each other's releases. LabelClusterID is on the release record
// only.
const (
	LabelManaged      = "mengi.cloud/managed"
	LabelDeploymentID = "mengi.cloud/deployment-id"
	LabelClusterID    = "mengi.cloud/cluster-id"
)

// Reasons written to status.reason: the step that failed.
const (
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonRenderFailed       = "RenderFailed"
	ReasonChartUnavailable   = "ChartUnavailable"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonPolicyViolation    = "PolicyViolation" // the chart would create objects outside its namespace, or privileged pods
	ReasonHealthCheckFailed  = "HealthCheckFailed"
	ReasonClusterUnreachable = "ClusterUnreachable"
	ReasonUnknownCluster     = "UnknownCluster"
	// ReasonAccessDenied: the deployment's owner is not a registered user,
	// or may not deploy to its cluster; nothing is applied.
	ReasonAccessDenied = "AccessDenied"
)

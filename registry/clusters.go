package registry

import (
	"context"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// ClusterSpec is what `mengi clusters add` registers.
type ClusterSpec struct {
	Name       string
	Kubeconfig string
	Context    string
	Provider   string
	Region     string
	Domain     string
	// Users are the emails allowed to deploy; empty allows everyone.
	Users []string
	// AllowPrivileged lets deployments run privileged pods (see
	// schema.Cluster).
	AllowPrivileged bool
}

var (
	clusterName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	domainName  = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// Check reports the first problem with the spec, naming the flag.
func (c ClusterSpec) Check() error {
	switch {
	case !clusterName.MatchString(c.Name) || len(c.Name) > 63:
		return fmt.Errorf("--name %q: use a DNS label (lowercase letters, digits and '-')", c.Name)
	case c.Domain != "" && (!domainName.MatchString(c.Domain) || len(c.Domain) > 253):
		return fmt.Errorf("--domain %q is not a DNS name", c.Domain)
	}
	for _, u := range c.Users {
		if a, err := mail.ParseAddress(u); err != nil || a.Address != u {
			return fmt.Errorf("--user %q is not a valid email address", u)
		}
	}
	return nil
}

// AddCluster registers a cluster; its name must be new.
func (r *Registry) AddCluster(ctx context.Context, spec ClusterSpec) (*schema.Cluster, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, err
	}
	c := &schema.Cluster{
		APIVersion: schema.APIVersion, Kind: schema.KindCluster, ID: id.String(), Name: spec.Name,
		Kubeconfig: spec.Kubeconfig, Context: spec.Context, Provider: spec.Provider, Region: spec.Region,
		Domain: spec.Domain, Users: spec.Users, AllowPrivileged: spec.AllowPrivileged,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	_, err = r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		if v.ClusterByName(spec.Name) != nil {
			return nil, fmt.Errorf("a cluster named %q is already registered", spec.Name)
		}
		content, err := schema.EncodeRecord(c)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  Operator,
			Message: gitstore.Message("cluster "+spec.Name+": register", "", gitstore.Trailer{Key: "Cluster-Id", Value: c.ID}),
			Changes: []gitstore.Change{{Path: gitstore.ClusterPath(c.ID), Content: content, Value: c}},
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("register cluster %s: %w", spec.Name, err)
	}
	return c, nil
}

// EnsureCluster registers the cluster, or updates the registered cluster of
// that name when its connection or description differ; it returns the
// cluster as recorded.
func (r *Registry) EnsureCluster(ctx context.Context, spec ClusterSpec) (*schema.Cluster, error) {
	existing := r.ClusterByName(spec.Name)
	if existing == nil {
		return r.AddCluster(ctx, spec)
	}
	if err := spec.Check(); err != nil {
		return nil, err
	}
	next := *existing
	next.Kubeconfig, next.Context, next.Provider, next.Region, next.Domain = spec.Kubeconfig, spec.Context, spec.Provider, spec.Region, spec.Domain
	next.Users, next.AllowPrivileged = spec.Users, spec.AllowPrivileged
	if next.Kubeconfig == existing.Kubeconfig && next.Context == existing.Context && next.Provider == existing.Provider &&
		next.Region == existing.Region && next.Domain == existing.Domain && slices.Equal(next.Users, existing.Users) &&
		next.AllowPrivileged == existing.AllowPrivileged {
		return existing, nil
	}
	// A new connection: the agent checks it again. A held removal stays.
	next.Status = nil
	if st := existing.Status; st != nil && st.PruneHold != nil {
		next.Status = &schema.ClusterStatus{PruneHold: st.PruneHold}
	}
	_, err := r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		content, err := schema.EncodeRecord(&next)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  Operator,
			Message: gitstore.Message("cluster "+spec.Name+": update", "", gitstore.Trailer{Key: "Cluster-Id", Value: next.ID}),
			Changes: []gitstore.Change{{Path: gitstore.ClusterPath(next.ID), Content: content, Value: &next}},
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("update cluster %s: %w", spec.Name, err)
	}
	return &next, nil
}

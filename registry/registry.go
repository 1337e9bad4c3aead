package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// Registry is the operator's repository of users and clusters. All
// methods are safe for concurrent use.
type Registry struct {
	store *gitstore.Store
	usage *usage
}

// Open opens the registry repository at dir, creating it when missing.
// opts.Holds is set to gitstore.HoldsRegistry.
func Open(dir string, opts gitstore.Options) (*Registry, error) {
	opts.Holds = gitstore.HoldsRegistry
	s, err := gitstore.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	return &Registry{store: s, usage: loadUsage(s.Dir())}, nil
}

// OpenExisting opens the registry repository at dir, which must exist:
// for a command that only reads it (a typo must not create an empty one).
func OpenExisting(dir string) (*Registry, error) {
	if _, err := os.Stat(filepath.Join(dir, "objects")); err != nil {
		return nil, fmt.Errorf("--registry %s: not a registry repository: %w", dir, err)
	}
	return Open(dir, gitstore.Options{})
}

// DefaultDir is where the registry of the deployments repository at repo
// lives unless told otherwise: beside it, named after it
// (/srv/mengi/repo → /srv/mengi/repo-registry), so two repositories in
// one folder never share one.
func DefaultDir(repo string) string {
	return filepath.Clean(repo) + "-registry"
}

// Close saves when keys were last used and closes the repository.
func (r *Registry) Close() error { return errors.Join(r.usage.save(), r.store.Close()) }

// KeyUsed notes that the key with this SHA-256 authenticated a request at
// now (kept to the minute, outside Git).
func (r *Registry) KeyUsed(sha string, now time.Time) error { return r.usage.record(sha, now) }

// LastUsed is when the key with this SHA-256 was last used, nil when never
// (as far as this registry's processes know).
func (r *Registry) LastUsed(sha string) *time.Time { return r.usage.lastUsed(sha) }

// Dir is the repository's folder.
func (r *Registry) Dir() string { return r.store.Dir() }

// Store is the repository, for those who follow its changes (the agent).
func (r *Registry) Store() *gitstore.Store { return r.store }

// Changed returns a channel closed when the registry's head moves next
// (a user, a key or a cluster changed), as gitstore.Store.Changed.
func (r *Registry) Changed() <-chan struct{} { return r.store.Changed() }

// UserByKey returns the user holding the API key with this SHA-256, or nil.
func (r *Registry) UserByKey(sha string) *schema.User {
	if rec := r.store.UserByKey(sha); rec != nil {
		return rec.User()
	}
	return nil
}

// User returns the user with this id, or nil.
func (r *Registry) User(id string) *schema.User {
	var u *schema.User
	r.store.Read(func(v *gitstore.View) { u = v.User(id) })
	return u
}

// Cluster returns the cluster with this id, or nil.
func (r *Registry) Cluster(id string) *schema.Cluster {
	var c *schema.Cluster
	r.store.Read(func(v *gitstore.View) { c = v.Cluster(id) })
	return c
}

// ClusterByName returns the cluster with this name, or nil.
func (r *Registry) ClusterByName(name string) *schema.Cluster {
	var c *schema.Cluster
	r.store.Read(func(v *gitstore.View) { c = v.ClusterByName(name) })
	return c
}

// Clusters returns every registered cluster, in no particular order.
func (r *Registry) Clusters() []*schema.Cluster {
	var all []*schema.Cluster
	r.store.Read(func(v *gitstore.View) {
		v.Each(func(rec *gitstore.Record) {
			if c := rec.Cluster(); c != nil {
				all = append(all, c)
			}
		})
	})
	return all
}

// ErrUnknownCluster is Admit's error for a deployment on a cluster that is
// not registered.
var ErrUnknownCluster = errors.New("cluster is not registered")

// AccessError is Admit's error for a deployment its owner may not have
// where it is: the owner is not a registered user, or may not deploy to
// the cluster. Field is the file's field at fault.
type AccessError struct {
	Field string
	Msg   string
}

func (e *AccessError) Error() string { return e.Field + ": " + e.Msg }

// Admit checks a deployment against the registry and returns its
// cluster: the cluster is registered (else an error wrapping
// ErrUnknownCluster), its owner is a registered user, and the cluster
// allows that user (else *AccessError). The agent applies nothing that
// fails it, and the API changes nothing that fails it.
func (r *Registry) Admit(d *schema.Deployment) (*schema.Cluster, error) {
	var c *schema.Cluster
	var u *schema.User
	r.store.Read(func(v *gitstore.View) {
		c, u = v.Cluster(d.Spec.ClusterID), v.User(d.Metadata.UserID)
	})
	switch {
	case c == nil:
		return nil, fmt.Errorf("spec.cluster_id: %s: %w", d.Spec.ClusterID, ErrUnknownCluster)
	case u == nil:
		return c, &AccessError{Field: "metadata.user_id", Msg: fmt.Sprintf("user %s is not registered", d.Metadata.UserID)}
	case !c.Allows(u.Email):
		return c, &AccessError{Field: "spec.cluster_id",
			Msg: fmt.Sprintf("user %s may not deploy to cluster %s (an operator grants access with `mengi clusters users`)", u.Email, c.Name)}
	}
	return c, nil
}

// EditClusterStatus changes the agent's status of a cluster: edit changes
// st and returns the commit's subject (after "cluster <name>: ") and
// body, or "" when nothing is to change. The commit is authored by author.
func (r *Registry) EditClusterStatus(ctx context.Context, id string, author gitstore.Signature, edit func(st *schema.ClusterStatus) (subject, body string)) error {
	_, err := r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		cl := v.Cluster(id)
		if cl == nil {
			return nil, nil
		}
		next := *cl
		st := schema.ClusterStatus{}
		if cl.Status != nil {
			st = *cl.Status
		}
		subject, body := edit(&st)
		if subject == "" {
			return nil, nil
		}
		next.Status = &st
		content, err := schema.EncodeRecord(&next)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  author,
			Message: gitstore.Message("cluster "+cl.Name+": "+subject, body, gitstore.Trailer{Key: "Cluster-Id", Value: id}),
			Changes: []gitstore.Change{{Path: gitstore.ClusterPath(id), Content: content, Value: &next}},
		}, nil
	})
	if err != nil {
		return fmt.Errorf("status of cluster %s: %w", id, err)
	}
	return nil
}

package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/mengi-cloud/gitops/gitstore"
)

// TakeOver moves the users and clusters that an earlier version kept in
// the deployments repository into the registry: one commit adds to the
// registry those it does not hold yet, then one commit removes them all
// from the deployments repository (their key hashes stay in its history:
// Git history is never rewritten). It returns how many files it moved.
// Both steps are idempotent, so a crash between them, or two processes
// starting at once, finish the move the next time.
func (r *Registry) TakeOver(ctx context.Context, deployments *gitstore.Store) (int, error) {
	files, err := deployments.Unkept()
	if err != nil || len(files) == 0 {
		return 0, err
	}
	var users, clusters int
	for _, f := range files {
		if strings.HasPrefix(f.Path, "users/") {
			users++
		} else {
			clusters++
		}
	}
	counts := plural(users, "user") + " and " + plural(clusters, "cluster")
	_, err = r.store.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		var changes []gitstore.Change
		for _, f := range files {
			if v.Record(f.Path) == nil {
				changes = append(changes, gitstore.Change{Path: f.Path, Content: f.Content})
			}
		}
		return &gitstore.Commit{
			Author: Operator,
			Message: gitstore.Message("registry: take in "+counts+" from the deployments repository",
				"Users, API key hashes and clusters are the operator's; the deployments repository no longer holds them.\nFrom: "+deployments.Dir()),
			Changes: changes,
		}, nil
	})
	if err != nil {
		return 0, fmt.Errorf("take users and clusters into the registry: %w", err)
	}
	_, err = deployments.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		changes := make([]gitstore.Change, len(files))
		for i, f := range files {
			changes[i] = gitstore.Change{Path: f.Path}
		}
		return &gitstore.Commit{
			Author: Operator,
			Message: gitstore.Message("registry: move "+counts+" to the operator registry",
				"Users, API key hashes and clusters now live in the registry repository, which pull requests never change.\nTo: "+r.Dir()),
			Changes: changes,
		}, nil
	})
	if err != nil {
		return 0, fmt.Errorf("remove users and clusters from the deployments repository: %w", err)
	}
	return len(files), nil
}

// plural is "1 user", "2 users".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

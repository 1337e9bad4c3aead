package servercmd

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/registry"
)

// RegistryFlag is --registry, the operator's repository of users and
// clusters.
func RegistryFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "registry", EnvVars: []string{"MENGI_REGISTRY"},
		Usage: "bare Git repository of users, API key hashes and clusters, apart from the deployments (default: <repo>-registry; created when missing)"}
}

// RegistryOnly opens the registry of the deployments repository repo (at
// reg, or its default place) for the operator commands, after taking in
// what an earlier version kept among the deployments.
func RegistryOnly(ctx context.Context, repo, reg string) (*registry.Registry, func() error, error) {
	repos, err := registry.OpenRepos(ctx, repo, reg, nil)
	if err != nil {
		return nil, nil, err
	}
	return repos.Registry, repos.Close, nil
}

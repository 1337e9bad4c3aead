package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
	"github.com/mengi-cloud/gitops/forge"
	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/prcheck"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
)

// forgeFlags say where pull requests are reported (the forge of
// --remote).
func forgeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "forge", EnvVars: []string{"MENGI_FORGE"},
			Usage: "the forge of --remote, gitea or github (default: github for github.com, else gitea); pull request checks report there"},
		&cli.StringFlag{Name: "forge-api", EnvVars: []string{"MENGI_FORGE_API"},
			Usage: "the forge's API root (default: from --remote: https://api.github.com, or http(s)://HOST/api/v1 for Gitea)"},
	}
}

// serveExtensions add pull request checks to `mengi serve`.
func serveExtensions() servercmd.Extensions {
	flags := append(forgeFlags(), fetchFlags()...)
	flags = append(flags, &cli.StringFlag{Name: "chart-cache", Usage: "folder for charts fetched by pull request checks (default: <repo>/../charts)"})
	return servercmd.Extensions{Flags: flags, PullRequests: pullRequests}
}

// pullRequests returns the pull request checker of a process on a remote
// with a webhook (nil without one: checks start from webhook deliveries).
func pullRequests(c *cli.Context, repos *registry.Repos, remote *servercmd.Remote, gr *gitremote.Remote, log *slog.Logger) (servercmd.PullRequestChecker, error) {
	if gr == nil || remote == nil || remote.WebhookSecret == nil {
		return nil, nil
	}
	if strings.HasPrefix(gr.URL(), "file://") {
		log.Info("pull requests are not checked: a file:// remote has no forge")
		return nil, nil
	}
	ep, err := forge.ParseCloneURL(gr.URL(), c.String("forge"))
	if err != nil {
		return nil, fmt.Errorf("--forge: %w", err)
	}
	if api := c.String("forge-api"); api != "" {
		ep.APIURL = api
	}
	if remote.Token == "" {
		return nil, fmt.Errorf("pull request checks post statuses and comments: give the forge's token with --remote-token-file or MENGI_REMOTE_TOKEN")
	}
	client, err := forge.New(forge.Options{Kind: ep.Kind, APIURL: ep.APIURL, Repo: ep.Repo, Token: remote.Token, Logger: log})
	if err != nil {
		return nil, err
	}
	cache := c.String("chart-cache")
	if cache == "" {
		cache = filepath.Join(filepath.Dir(filepath.Clean(repos.Deployments.Dir())), "charts")
	}
	fetch, err := fetchOptions(c, log)
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(render.Options{CacheDir: cache, Logger: log, Fetch: fetch})
	if err != nil {
		return nil, err
	}
	log.Info("pull requests are checked", "forge", ep.Kind, "api", ep.APIURL, "repo", ep.Repo)
	return prcheck.New(prcheck.Options{
		GitDir:   repos.Deployments.Dir(),
		Remote:   gr,
		Registry: repos.Registry,
		Renderer: renderer,
		Reporter: prcheck.ForgeReporter(client),
		Logger:   log.With("component", "prcheck"),
	})
}

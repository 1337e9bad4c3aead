package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
	"github.com/mengi-cloud/gitops/devcluster"
	"github.com/mengi-cloud/gitops/registry"
)

// devEmail is the ready-made user of `mengi up`.
const devEmail = "dev@mengi.local"

func upCommand() *cli.Command {
	return &cli.Command{
		Name: "up",
		Usage: "run the whole system in one process: a local repository, the API, the agent and, unless --kubeconfig " +
			"is given, the local Kubernetes cluster; with a ready-made user key and cluster",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "folder for the repository, the dev key, the chart cache and the local cluster", Value: ".run", EnvVars: []string{"MENGI_DATA"}},
			&cli.StringFlag{Name: "listen", Usage: "API address", Value: "127.0.0.1:8080", EnvVars: []string{"MENGI_LISTEN"}},
			&cli.StringFlag{Name: "kubeconfig", Usage: "deploy to this cluster instead of starting the local one", EnvVars: []string{"MENGI_KUBECONFIG"}},
			&cli.StringFlag{Name: "context", Usage: "context of --kubeconfig (default: its current context)"},
			&cli.StringFlag{Name: "domain", Usage: "DNS domain for the cluster's ingress hosts", Value: "local.mengi.dev"},
			servercmd.RateLimitFlag(),
			servercmd.MaxRequestsFlag(),
			servercmd.LogFlag(),
		}, append(append(agentFlags(), servercmd.RemoteFlags()...), forgeFlags()...)...),
		Action: up,
	}
}

func up(c *cli.Context) error {
	log, err := servercmd.NewLogger(c.String("log-level"))
	if err != nil {
		return err
	}
	data, err := filepath.Abs(c.String("data"))
	if err != nil {
		return err
	}
	kubeconfig, provider := c.String("kubeconfig"), "kubeconfig"
	if kubeconfig == "" {
		fmt.Fprintln(c.App.ErrWriter, "starting the local Kubernetes cluster (about 10 s)...")
		cl, err := devcluster.Start(c.Context, devcluster.Options{StateDir: filepath.Join(data, "cluster"), Logger: log})
		if err != nil {
			return fmt.Errorf("local cluster: %w (or pass --kubeconfig to use another cluster)", err)
		}
		defer cl.Stop()
		kubeconfig, provider = cl.KubeconfigPath(), "local"
	}
	if kubeconfig, err = filepath.Abs(kubeconfig); err != nil {
		return err
	}

	remote, err := servercmd.RemoteFromFlags(c)
	if err != nil {
		return err
	}
	repos, gr, err := servercmd.OpenRepos(c.Context, filepath.Join(data, "repo"), filepath.Join(data, "registry"), remote, log)
	if err != nil {
		return err
	}
	defer repos.Close()
	if err := servercmd.InstallPushCheck(repos, log); err != nil {
		return err
	}
	store, reg := repos.Deployments, repos.Registry
	key, err := devKey(c, reg, filepath.Join(data, "dev-key"))
	if err != nil {
		return err
	}
	cluster, err := reg.EnsureCluster(c.Context, registry.ClusterSpec{
		Name: "local", Kubeconfig: kubeconfig, Context: c.String("context"), Provider: provider, Region: "local", Domain: c.String("domain"),
	})
	if err != nil {
		return err
	}
	a, err := newAgent(c, repos, log)
	if err != nil {
		return err
	}
	prs, err := pullRequests(c, repos, remote, gr, log)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	var wg sync.WaitGroup
	var agentErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		agentErr = a.Run(ctx)
		cancel()
	}()
	ready := func(addr string) {
		clone := "git clone " + servercmd.CloneURL(addr) + "   (any user name; the API key is the password)"
		if remote != nil {
			clone = "git clone " + remote.URL + "   (on the Git server; change deployments through pull requests)"
		}
		fmt.Fprintf(c.App.Writer, `
Mengi GitOps is up.
  API:        http://%[1]s   (OpenAPI: http://%[1]s/openapi.json)
  repository: %[2]s   (registry of users and clusters: %[7]s)
  API key:    %[3]s   (user %[4]s)
  cluster:    %[5]s   (local: %[6]s)
  git:        %[8]s

Try:
  curl -s -X POST http://%[1]s/deployments \
    -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"cluster_id": "%[5]s", "name": "hello", "app_type": "web_app", "docker_image": "nginx:1.27", "replicas": 2, "container_port": 80}'
  git -C %[2]s log --stat
  KUBECONFIG=%[6]s kubectl get all -n mengi-hello

`, addr, store.Dir(), key, devEmail, cluster.ID, kubeconfig, reg.Dir(), clone)
	}
	apiErr := servercmd.ServeWithChecks(ctx, repos, remote, prs, log, func(ctx context.Context, mounts []servercmd.Mount) error {
		return servercmd.ServeAPI(ctx, repos, c.String("listen"), 30*time.Second, c.Float64("rate-limit"), c.Int("max-requests"), log, ready, mounts...)
	})
	cancel()
	wg.Wait()
	return errors.Join(apiErr, agentErr)
}

// devKey returns the key kept in path when it is still registered, or
// registers a new one for the dev user and keeps it there. The dev user
// has git access.
func devKey(c *cli.Context, reg *registry.Registry, path string) (string, error) {
	key := ""
	if b, err := os.ReadFile(path); err == nil {
		key = strings.TrimSpace(string(b))
	}
	if key == "" || reg.UserByKey(registry.HashKey(key)) == nil {
		var err error
		if key, _, err = reg.AddKey(c.Context, "Developer", devEmail); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("keep dev key: %w", err)
		}
	}
	if _, err := reg.GrantGitAccess(c.Context, devEmail); err != nil {
		return "", err
	}
	return key, nil
}

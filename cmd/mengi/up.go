package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
)

// devEmail is the ready-made user of `mengi up`.
const devEmail = "dev@mengi.local"

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "run the whole system on an embedded default: a local repository and the API, with a ready-made user key and cluster",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "folder for the repository and the dev key", Value: ".run", EnvVars: []string{"MENGI_DATA"}},
			&cli.StringFlag{Name: "listen", Usage: "API address", Value: "127.0.0.1:8080", EnvVars: []string{"MENGI_LISTEN"}},
			logFlag,
		},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c.String("log-level"))
			if err != nil {
				return err
			}
			data := c.String("data")
			store, err := gitstore.Open(filepath.Join(data, "repo"), gitstore.Options{Logger: log})
			if err != nil {
				return err
			}
			defer store.Close()
			key, err := devKey(c, store, filepath.Join(data, "dev-key"))
			if err != nil {
				return err
			}
			cluster := registry.ClusterByName(store, "local")
			if cluster == nil {
				if cluster, err = registry.AddCluster(c.Context, store, registry.ClusterSpec{Name: "local", Provider: "local", Region: "local", Domain: "local.mengi.dev"}); err != nil {
					return err
				}
			}
			return serveAPI(c.Context, store, c.String("listen"), 30*time.Second, log, func(addr string) {
				fmt.Fprintf(c.App.Writer, `
Mengi GitOps is up.
  API:        http://%[1]s   (OpenAPI: http://%[1]s/openapi.json)
  repository: %[2]s
  API key:    %[3]s   (user %[4]s)
  cluster:    %[5]s   (local)

Try:
  curl -s -X POST http://%[1]s/deployments \
    -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"cluster_id": "%[5]s", "name": "hello", "app_type": "web_app", "docker_image": "nginx:1.27", "replicas": 2, "container_port": 80}'
  git -C %[2]s log --stat

`, addr, store.Dir(), key, devEmail, cluster.ID)
			})
		},
	}
}

// devKey returns the key kept in path when it is still registered, or
// registers a new one for the dev user and keeps it there.
func devKey(c *cli.Context, store *gitstore.Store, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		key := strings.TrimSpace(string(b))
		if r := store.UserByKey(registry.HashKey(key)); r != nil {
			return key, nil
		}
	}
	key, _, err := registry.AddKey(c.Context, store, "Developer", devEmail)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep dev key: %w", err)
	}
	return key, nil
}

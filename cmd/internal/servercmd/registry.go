package servercmd

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
)

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "manage API keys",
		Subcommands: []*cli.Command{{
			Name:  "add",
			Usage: "make a new API key for a user (created when new) and print it; it is shown only once",
			Flags: []cli.Flag{
				RepoFlag(),
				&cli.StringFlag{Name: "name", Usage: "the user's name (commit author name)", Required: true},
				&cli.StringFlag{Name: "email", Usage: "the user's email (commit author email)", Required: true},
			},
			Action: func(c *cli.Context) error {
				store, err := gitstore.Open(c.String("repo"), gitstore.Options{})
				if err != nil {
					return err
				}
				defer store.Close()
				key, _, err := registry.AddKey(c.Context, store, c.String("name"), c.String("email"))
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, key)
				return nil
			},
		}},
	}
}

func clustersCommand() *cli.Command {
	return &cli.Command{
		Name:  "clusters",
		Usage: "manage the clusters deployments may target",
		Subcommands: []*cli.Command{{
			Name:  "add",
			Usage: "register a cluster and print its id",
			Flags: []cli.Flag{
				RepoFlag(),
				&cli.StringFlag{Name: "name", Usage: "the cluster's name (a DNS label, unique)", Required: true},
				&cli.StringFlag{Name: "kubeconfig", Usage: "path of the kubeconfig the agent uses for this cluster"},
				&cli.StringFlag{Name: "context", Usage: "context of the kubeconfig (default: its current context)"},
				&cli.StringFlag{Name: "provider", Usage: "shown as provider in responses (e.g. local, aws, hetzner)"},
				&cli.StringFlag{Name: "region", Usage: "shown as region in responses"},
				&cli.StringFlag{Name: "domain", Usage: "DNS domain for ingress hosts: <deployment>.<domain>"},
				&cli.StringSliceFlag{Name: "user", Usage: "email of a user allowed to deploy here (repeat; none: everyone)"},
				&cli.BoolFlag{Name: "allow-privileged", Usage: "let deployments run privileged pods and use the host's network, PID and IPC namespaces, paths and ports"},
			},
			Action: func(c *cli.Context) error {
				store, err := gitstore.Open(c.String("repo"), gitstore.Options{})
				if err != nil {
					return err
				}
				defer store.Close()
				cl, err := registry.AddCluster(c.Context, store, registry.ClusterSpec{
					Name: c.String("name"), Kubeconfig: c.String("kubeconfig"), Context: c.String("context"),
					Provider: c.String("provider"), Region: c.String("region"), Domain: c.String("domain"),
					Users: c.StringSlice("user"), AllowPrivileged: c.Bool("allow-privileged"),
				})
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, cl.ID)
				return nil
			},
		}},
	}
}

package servercmd

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

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
				RegistryFlag(),
				&cli.StringFlag{Name: "name", Usage: "the user's name (commit author name)", Required: true},
				&cli.StringFlag{Name: "email", Usage: "the user's email (commit author email)", Required: true},
				&cli.BoolFlag{Name: "git-access", Usage: "also let the user clone and push the deployments repository over the server's git endpoint " +
					"(/git/deployments.git, any of their keys as the password); kept by later `keys add` without the flag"},
			},
			Action: func(c *cli.Context) error {
				reg, closeRepos, err := RegistryOnly(c.Context, c.String("repo"), c.String("registry"))
				if err != nil {
					return err
				}
				defer closeRepos()
				key, _, err := reg.AddKey(c.Context, c.String("name"), c.String("email"))
				if err != nil {
					return err
				}
				if c.Bool("git-access") {
					if _, err := reg.GrantGitAccess(c.Context, c.String("email")); err != nil {
						return err
					}
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
				RegistryFlag(),
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
				reg, closeRepos, err := RegistryOnly(c.Context, c.String("repo"), c.String("registry"))
				if err != nil {
					return err
				}
				defer closeRepos()
				cl, err := reg.AddCluster(c.Context, registry.ClusterSpec{
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
		}, {
			Name:  "users",
			Usage: "set who may deploy to a registered cluster (no --user: everyone); the agent stops applying what others own there",
			Flags: []cli.Flag{
				RepoFlag(),
				RegistryFlag(),
				&cli.StringFlag{Name: "name", Usage: "the cluster's name", Required: true},
				&cli.StringSliceFlag{Name: "user", Usage: "email of a user allowed to deploy here (repeat; none: everyone)"},
			},
			Action: func(c *cli.Context) error {
				reg, closeRepos, err := RegistryOnly(c.Context, c.String("repo"), c.String("registry"))
				if err != nil {
					return err
				}
				defer closeRepos()
				cl := reg.ClusterByName(c.String("name"))
				if cl == nil {
					return fmt.Errorf("no cluster named %q is registered", c.String("name"))
				}
				_, err = reg.EnsureCluster(c.Context, registry.ClusterSpec{Name: cl.Name, Kubeconfig: cl.Kubeconfig, Context: cl.Context,
					Provider: cl.Provider, Region: cl.Region, Domain: cl.Domain, Users: c.StringSlice("user"), AllowPrivileged: cl.AllowPrivileged})
				return err
			},
		}},
	}
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "list the removals of deployments the agent holds back, or confirm one",
		Description: "When a commit removes the files of every deployment of a cluster, or of at least two and more\n" +
			"than a share of them (the agent's --prune-hold-percent, 25 by default), the agent removes nothing\n" +
			"from the cluster and records the removal in the cluster's status. Without --confirm this lists\n" +
			"them; --confirm COMMIT lets the agent remove the releases held at that commit.",
		Flags: []cli.Flag{
			RepoFlag(),
			RegistryFlag(),
			&cli.StringFlag{Name: "confirm", Usage: "the commit `mengi prune` shows for the removal to let through"},
		},
		Action: func(c *cli.Context) error {
			reg, closeRepos, err := RegistryOnly(c.Context, c.String("repo"), c.String("registry"))
			if err != nil {
				return err
			}
			defer closeRepos()
			if commit := c.String("confirm"); commit != "" {
				done, err := reg.ConfirmPrune(c.Context, commit)
				for _, cl := range done {
					fmt.Fprintf(c.App.Writer, "cluster %s: removal of %d deployments confirmed; the agent removes them now\n", cl.Name, len(cl.Status.PruneHold.Releases))
				}
				return err
			}
			held := reg.Held()
			if len(held) == 0 {
				fmt.Fprintln(c.App.Writer, "no removal is held")
			}
			for _, cl := range held {
				h := cl.Status.PruneHold
				state := "held: mengi prune --confirm " + h.Commit[:8]
				if h.Confirmed {
					state = "confirmed, being removed"
				}
				fmt.Fprintf(c.App.Writer, "cluster %s: %d of %d deployments removed at %s (%s), since %s\n", cl.Name, len(h.Releases), h.Of,
					h.Commit[:8], state, h.Since.Format(time.RFC3339))
				for _, r := range h.Releases {
					fmt.Fprintf(c.App.Writer, "  %s\n", r)
				}
			}
			return nil
		},
	}
}

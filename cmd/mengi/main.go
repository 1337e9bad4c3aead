// Command mengi is the binary of Mengi GitOps with every command: the
// deployments API, the sync agent, the local cluster, the validator and
// the operator tools. mengi-server carries the API's commands alone.
package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
)

func main() {
	os.Exit(servercmd.Run(newApp(), os.Args))
}

// newApp wires the subcommands; each lives in its own file (the server's
// in cmd/internal/servercmd, shared with mengi-server).
func newApp() *cli.App {
	cmds := append(servercmd.Commands(serveExtensions()),
		devClusterCommand(),
		upCommand(),
		agentCommand(),
		servercmd.BenchCommand(benchAgentCommand(), benchForgeCommand()),
		validateCommand(),
		renderCommand(),
	)
	return servercmd.NewApp("mengi", "deploy applications onto Kubernetes through Git", cmds)
}

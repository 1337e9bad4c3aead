// Command mengi is the single binary of Mengi GitOps: the deployments API,
// the sync agent, the validator and the operator tools.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "mengi:", err)
		os.Exit(exitCode(err))
	}
}

// newApp wires the subcommands; each lives in its own file.
func newApp() *cli.App {
	return &cli.App{
		Name:  "mengi",
		Usage: "deploy applications onto Kubernetes through Git",
		Commands: []*cli.Command{
			serveCommand(),
			keysCommand(),
			clustersCommand(),
			devClusterCommand(),
			upCommand(),
			agentCommand(),
			benchCommand(),
			validateCommand(),
			renderCommand(),
		},
		HideHelpCommand: true,
	}
}

// exitCode maps an error to the process exit status: cli.ExitCoder errors
// carry their own, everything else is 1.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}

// Package servercmd holds the commands of the API server process (serve,
// keys, clusters, bench api and bench store) and the application around
// them. Both binaries use it: mengi-server, which links no Kubernetes or
// Helm code, and mengi, which adds the agent and the other tools.
package servercmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Commands are the server process's own commands: serve, keys, clusters,
// prune and check-push (bench is BenchCommand).
func Commands(ext Extensions) []*cli.Command {
	return []*cli.Command{serveCommand(ext), keysCommand(), clustersCommand(), pruneCommand(), checkPushCommand()}
}

// NewApp is the command-line application called name, with the global
// --memory-limit flag.
func NewApp(name, usage string, commands []*cli.Command) *cli.App {
	return &cli.App{
		Name:     name,
		Usage:    usage,
		Commands: commands,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "memory-limit", EnvVars: []string{"MENGI_MEMORY_LIMIT"},
				Usage: "soft limit of the process's memory, like GOMEMLIMIT (e.g. 180MiB): the Go runtime collects garbage harder near it"},
		},
		Before: func(c *cli.Context) error {
			if v := c.String("memory-limit"); v != "" {
				n, err := parseSize(v)
				if err != nil {
					return fmt.Errorf("--memory-limit: %w", err)
				}
				debug.SetMemoryLimit(n)
			}
			return nil
		},
		HideHelpCommand: true,
	}
}

// Run runs app on args (args[0] is the program name) until it returns or
// SIGINT or SIGTERM cancels it, prints the error if there is one, and
// returns the process's exit status. The signals stay caught until the
// process exits: the local cluster raises the signal that stopped it once
// more when it is down, and that must not end the process before it
// reports its status.
func Run(app *cli.App, args []string) int {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
		return exitCode(err)
	}
	return 0
}

// parseSize reads a size in bytes with an optional binary suffix (KiB,
// MiB, GiB), as GOMEMLIMIT does.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size like 180MiB", s)
	}
	return n * mult, nil
}

// exitCode maps an error to the process exit status: cli.ExitCoder errors
// carry their own, everything else is 1.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}

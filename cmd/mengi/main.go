// Command mengi is the single binary of Mengi GitOps: the deployments API,
// the sync agent, the validator and the operator tools.
package main

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

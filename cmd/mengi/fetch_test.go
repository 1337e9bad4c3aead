package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFetchFlagsOnCommands: agent, up and render take the same fetch flags.
func TestFetchFlagsOnCommands(t *testing.T) {
	for _, cmd := range []*cli.Command{agentCommand(), upCommand(), renderCommand()} {
		var names []string
		for _, f := range cmd.Flags {
			names = append(names, f.Names()...)
		}
		for _, want := range []string{"allow-fetch", "fetch-credentials", "fetch-proxy"} {
			if !slices.Contains(names, want) {
				t.Errorf("mengi %s has no --%s", cmd.Name, want)
			}
		}
	}
}

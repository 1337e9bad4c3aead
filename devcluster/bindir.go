package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// buildScript is the script, relative to the repository root, that builds the
// binaries and prints their folder.
const buildScript = "tools/devcluster/build.sh"

// ResolveBinDir returns the folder with the control-plane binaries: dir if it
// is not empty, else $MENGI_CLUSTER_BIN, else what tools/devcluster/build.sh
// --print-dir says when the working directory is inside the repository. It
// fails, naming what it tried and how to build the binaries, when one of them
// is missing.
func ResolveBinDir(dir string) (string, error) {
	tried := []string{}
	if dir == "" {
		dir = os.Getenv(EnvBinDir)
		tried = append(tried, "$"+EnvBinDir)
	}
	if dir == "" {
		script, err := findBuildScript()
		if err != nil {
			return "", fmt.Errorf("devcluster: no binary folder: %s is empty and %w", EnvBinDir, err)
		}
		dir, err = printDir(script)
		if err != nil {
			return "", err
		}
		tried = append(tried, script+" --print-dir")
	}
	var missing []string
	for _, name := range Binaries() {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("devcluster: %s missing in %s (from %s): run `make cluster-bin` (about 20 minutes the first time)",
			strings.Join(missing, ", "), dir, strings.Join(tried, ", "))
	}
	return filepath.Abs(dir)
}

// findBuildScript looks for tools/devcluster/build.sh in the working
// directory and its parents.
func findBuildScript() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, buildScript)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New(buildScript + " not found above " + wd)
		}
	}
}

func printDir(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", script, "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("devcluster: %s --print-dir: %w", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

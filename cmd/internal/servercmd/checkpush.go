package servercmd

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/githttp"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/pushcheck"
	"github.com/mengi-cloud/gitops/registry"
)

// hookMarker starts the pre-receive hook Mengi installs, so it is never
// mistaken for one an operator wrote.
const hookMarker = "# Installed by Mengi GitOps"

// InstallPushCheck makes `check-push` of this executable the deployments
// repository's pre-receive hook, so a push that breaks a rule is refused
// with one line per problem. A hook the operator wrote is left alone.
//
// On a full disk the hook cannot be written: when one Mengi installed
// before is there (naming another executable, an earlier installation's),
// it stays, with a warning, so that the server starts and serves reads;
// when there is none, starting is refused (pushes would go unchecked).
func InstallPushCheck(repos *registry.Repos, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("install the push check: %w", err)
	}
	path := filepath.Join(repos.Deployments.Dir(), "hooks", "pre-receive")
	script := fmt.Sprintf("#!/bin/sh\n%s: every push of main is checked (see `mengi check-push --help`).\nexec %s check-push --repo %s --registry %s\n",
		hookMarker, shellQuote(exe), shellQuote(repos.Deployments.Dir()), shellQuote(repos.Registry.Dir()))
	old, err := os.ReadFile(path)
	switch {
	case err == nil && string(old) == script:
		return nil
	case err == nil && !strings.Contains(string(old), hookMarker):
		return nil // the operator's own hook
	}
	ours := err == nil
	err = writeHook(path, script)
	switch {
	case err == nil:
		return nil
	case gitstore.IsDiskFull(err) && ours:
		log.Warn("the push check stays as installed before: the disk is full; it is brought up to date at a start once space is freed",
			"hook", path, "err", err)
		return nil
	case gitstore.IsDiskFull(err):
		return fmt.Errorf("install the push check: the repository's disk is full (free space and start again): %w", err)
	}
	return fmt.Errorf("install the push check: %w", err)
}

// writeHook replaces the hook at path with script (a temporary file
// renamed over it; removed when it cannot be written).
func writeHook(path, script string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func checkPushCommand() *cli.Command {
	return &cli.Command{
		Name:  "check-push",
		Usage: "git's pre-receive hook of the deployments repository: refuse a push that breaks a rule",
		Description: "Reads git's pre-receive input (<old> <new> <ref> per line). A push of main is refused when a\n" +
			"deployment file it adds or changes does not pass the schema, sits at another path than its\n" +
			"spec says, names a cluster or owner the registry does not know or a cluster the owner may not\n" +
			"use, or changes its owner, and when it adds a user or cluster record; each problem is printed\n" +
			"as FILE:LINE: FIELD: MESSAGE. Deleting main and pushing refs/mengi/* are refused; other\n" +
			"branches (for pull requests) are not checked, except that a push through the server's git\n" +
			"endpoint (/git/deployments.git) may change main only. `mengi serve`, `mengi agent` and\n" +
			"`mengi up` install it as hooks/pre-receive.",
		Flags: []cli.Flag{RepoFlag(), &cli.StringFlag{Name: "registry", Required: true, Usage: "the registry repository"}},
		Action: func(c *cli.Context) error {
			reg, err := registry.OpenExisting(c.String("registry"))
			if err != nil {
				return err
			}
			defer reg.Close()
			var problems []string
			in := bufio.NewScanner(os.Stdin)
			for in.Scan() {
				f := strings.Fields(in.Text())
				if len(f) != 3 {
					continue
				}
				ps, err := checkRef(c, reg, f[0], f[1], f[2])
				if err != nil {
					return err
				}
				problems = append(problems, ps...)
			}
			for _, p := range problems {
				fmt.Fprintln(c.App.ErrWriter, p)
			}
			if len(problems) > 0 {
				return cli.Exit(fmt.Sprintf("push refused: %d problems; fix them and push again (`mengi validate` checks files before a push)", len(problems)), 1)
			}
			return nil
		},
	}
}

// checkRef checks one ref the push moves.
func checkRef(c *cli.Context, reg *registry.Registry, old, new, ref string) ([]string, error) {
	switch {
	case strings.HasPrefix(ref, "refs/mengi/"):
		return []string{ref + ": refs/mengi/ are Mengi's own; a push may not change them"}, nil
	case ref != "refs/heads/main" && os.Getenv(githttp.PushEnv) == "1":
		return []string{ref + ": the server's git endpoint takes pushes of main only (Mengi follows main alone); push your commits to main"}, nil
	case ref != "refs/heads/main":
		return nil, nil
	}
	ps, err := pushcheck.Check(c.Context, c.String("repo"), old, new, reg)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out, err
}

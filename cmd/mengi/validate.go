package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/pushcheck"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// Exit codes of `mengi validate`.
const (
	validateProblems   = 1 // some file is not a valid deployment
	validateUnreadable = 2 // some file or directory could not be read
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check deployment files as the agent reads them",
		ArgsUsage: "FILE|DIR...",
		Description: "Checks each deployment file as the store and the agent do and prints one line per\n" +
			"problem: FILE:LINE: FIELD: MESSAGE. The schema and rules of the API; a file at\n" +
			"clusters/<cluster-id>/<name>.yaml must say that cluster and name; no two files may\n" +
			"hold one metadata.id; and with --registry, the cluster and the owner must be registered\n" +
			"and the cluster must allow the owner. Symbolic links are refused, not followed, and so\n" +
			"are files over 4 MiB. A directory is searched for *.yaml and *.yml deployment files:\n" +
			"those at clusters/<cluster-id>/<name>.yaml and any other whose kind is Deployment of\n" +
			"mengi.cloud. Exits 1 when a file has problems and 2 when a file cannot be read.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print FILE: ok for each valid file"},
			&cli.StringFlag{Name: "registry", EnvVars: []string{"MENGI_REGISTRY"},
				Usage: "the operator's registry repository: also check that each file's cluster and owner are registered and the cluster allows the owner"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("mengi validate: name at least one deployment file or directory", validateUnreadable)
			}
			v := fileValidator{out: c.App.Writer, errOut: c.App.ErrWriter, verbose: c.Bool("verbose"), ids: map[string]string{}}
			if dir := c.String("registry"); dir != "" {
				reg, err := registry.OpenExisting(dir)
				if err != nil {
					return cli.Exit("mengi validate: "+err.Error(), validateUnreadable)
				}
				defer reg.Close()
				v.reg = reg
			}
			for _, arg := range c.Args().Slice() {
				v.arg(arg)
			}
			return v.result()
		},
	}
}

type fileValidator struct {
	out, errOut io.Writer
	verbose     bool
	reg         *registry.Registry // nil: no registry checks
	ids         map[string]string  // metadata.id → the first file holding it

	files, invalid, problems, unreadable int
}

// arg validates a file named on the command line (whatever its name) or
// the deployment files under a directory.
func (v *fileValidator) arg(arg string) {
	info, err := os.Stat(arg)
	if err != nil {
		v.cannotRead(err)
		return
	}
	if !info.IsDir() {
		v.file(arg) // a link named here is refused there
		return
	}
	err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			v.cannotRead(err)
			return nil
		}
		if d.IsDir() {
			if p != arg && (strings.HasPrefix(d.Name(), ".") || d.Name() == "users") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if isDeploymentPath(p) {
			v.file(p)
			return nil
		}
		data, ok := v.read(p)
		if ok && isDeploymentKind(data) {
			v.check(p, data)
		}
		return nil
	})
	if err != nil {
		v.cannotRead(err)
	}
}

// isDeploymentPath reports whether p sits where the API writes deployment
// files: clusters/<cluster-id>/<name>.yaml (a cluster's own record is
// clusters/<cluster-id>.yaml, one level up).
func isDeploymentPath(p string) bool {
	abs, err := filepath.Abs(p)
	if err != nil {
		return false
	}
	return filepath.Ext(abs) == ".yaml" && filepath.Base(filepath.Dir(filepath.Dir(abs))) == "clusters"
}

// isDeploymentKind reports whether a YAML file elsewhere declares a Mengi
// deployment: a top-level `kind: Deployment` and no apiVersion other than
// mengi.cloud's (a Kubernetes Deployment is apps/v1). It reads lines, not
// YAML, so that a file too broken to parse is still found and reported.
func isDeploymentKind(data []byte) bool {
	kind, apiVersion := "", ""
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || key != strings.TrimSpace(key) {
			continue // not a top-level key
		}
		value, _, _ = strings.Cut(value, " #")
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		switch key {
		case "kind":
			kind = value
		case "apiVersion":
			apiVersion = value
		}
	}
	return kind == schema.KindDeployment && (apiVersion == "" || strings.HasPrefix(apiVersion, "mengi.cloud/"))
}

func (v *fileValidator) file(p string) {
	if data, ok := v.read(p); ok {
		v.check(p, data)
	}
}

// read reads a regular file of at most schema.MaxFileBytes, without
// following a symbolic link; a file it refuses is a problem of its own.
func (v *fileValidator) read(p string) ([]byte, bool) {
	info, err := os.Lstat(p)
	if err != nil {
		v.cannotRead(err)
		return nil, false
	}
	var refuse string
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		refuse = "a symbolic link: deployment files are regular files, and links are not followed"
	case !info.Mode().IsRegular():
		refuse = "not a regular file"
	case info.Size() > schema.MaxFileBytes:
		refuse = fmt.Sprintf("the file is %d bytes; a deployment file holds at most %d (%d MiB)", info.Size(), schema.MaxFileBytes, schema.MaxFileBytes>>20)
	}
	if refuse != "" {
		v.files++
		v.report(p, schema.Errors{{Msg: refuse}})
		return nil, false
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		v.cannotRead(err)
		return nil, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, schema.MaxFileBytes+1))
	if err != nil {
		v.cannotRead(err)
		return nil, false
	}
	return data, true
}

func (v *fileValidator) check(p string, data []byte) {
	v.files++
	d, errs := schema.ParseFile(data)
	if errs == nil {
		errs = v.crossCheck(p, data, d)
	}
	if len(errs) == 0 {
		if v.verbose {
			fmt.Fprintf(v.out, "%s: ok\n", p)
		}
		return
	}
	v.report(p, errs)
}

// report prints a file's problems.
func (v *fileValidator) report(p string, errs schema.Errors) {
	v.invalid++
	v.problems += len(errs)
	for _, e := range errs {
		fmt.Fprintln(v.out, problemLine(p, e))
	}
}

// crossCheck checks a valid deployment d (the file p holding data) as the
// store and the agent do beyond the schema: its path and, with a
// registry, its cluster and owner (pushcheck.Rules), and its id against
// the other files.
func (v *fileValidator) crossCheck(p string, data []byte, d *schema.Deployment) schema.Errors {
	repoPath := ""
	if isDeploymentPath(p) {
		repoPath = path.Join("clusters", filepath.Base(filepath.Dir(p)), filepath.Base(p))
	}
	var reg pushcheck.Admitter
	if v.reg != nil {
		reg = v.reg
	}
	errs := pushcheck.Rules(repoPath, data, d, reg)
	if other, taken := v.ids[d.Metadata.ID]; taken {
		errs = append(errs, schema.FieldError{Loc: []any{"metadata", "id"}, Line: schema.LineOf(data, "metadata", "id"),
			Msg: "metadata.id " + d.Metadata.ID + " is already used by " + other})
	} else {
		v.ids[d.Metadata.ID] = p
	}
	return errs
}

// problemLine renders one problem as FILE:LINE: FIELD: MESSAGE.
func problemLine(p string, e schema.FieldError) string { return pushcheck.Line(p, e) }

func (v *fileValidator) cannotRead(err error) {
	v.unreadable++
	fmt.Fprintf(v.errOut, "mengi validate: %v\n", err)
}

// result is the command's outcome: nil when every file is valid.
func (v *fileValidator) result() error {
	switch {
	case v.unreadable > 0:
		return cli.Exit(fmt.Sprintf("mengi validate: %s could not be read", countOf(v.unreadable, "path")), validateUnreadable)
	case v.problems > 0:
		return cli.Exit(fmt.Sprintf("mengi validate: %s in %s of %d", countOf(v.problems, "problem"), countOf(v.invalid, "file"), v.files), validateProblems)
	}
	return nil
}

// countOf writes n and word, in the plural unless n is 1.
func countOf(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

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
		Description: "Checks each deployment file against the schema and rules of the API and prints one\n" +
			"line per problem: FILE:LINE: FIELD: MESSAGE. A directory is searched for *.yaml and\n" +
			"*.yml deployment files: those at clusters/<cluster-id>/<name>.yaml and any other whose\n" +
			"kind is Deployment of mengi.cloud (cluster and user records are skipped). Exits 1 when\n" +
			"a file has problems and 2 when a file cannot be read.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print FILE: ok for each valid file"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("mengi validate: name at least one deployment file or directory", validateUnreadable)
			}
			v := fileValidator{out: c.App.Writer, errOut: c.App.ErrWriter, verbose: c.Bool("verbose")}
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
		v.file(arg)
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
		data, err := os.ReadFile(p)
		if err != nil {
			v.cannotRead(err)
			return nil
		}
		if isDeploymentKind(data) {
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
	data, err := os.ReadFile(p)
	if err != nil {
		v.cannotRead(err)
		return
	}
	v.check(p, data)
}

func (v *fileValidator) check(p string, data []byte) {
	v.files++
	_, errs := schema.ParseFile(data)
	if len(errs) == 0 {
		if v.verbose {
			fmt.Fprintf(v.out, "%s: ok\n", p)
		}
		return
	}
	v.invalid++
	v.problems += len(errs)
	for _, e := range errs {
		fmt.Fprintln(v.out, problemLine(p, e))
	}
}

// problemLine renders one problem as FILE:LINE: FIELD: MESSAGE, leaving
// out the line when it is unknown and the field for the whole document.
func problemLine(p string, e schema.FieldError) string {
	var b strings.Builder
	b.WriteString(p)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if f := e.Field(); f != "" {
		b.WriteString(f + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

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

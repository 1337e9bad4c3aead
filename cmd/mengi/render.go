package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// Exit codes of `mengi render`.
const (
	renderProblems   = 1 // the file is invalid or does not render
	renderUnreadable = 2 // no file, or it cannot be read
)

func renderCommand() *cli.Command {
	return &cli.Command{
		Name:      "render",
		Usage:     "print a deployment's values_yaml, or the Kubernetes objects the agent applies",
		ArgsUsage: "FILE",
		Description: "Renders a deployment file as the agent does: the values document (values_yaml) or,\n" +
			"with --manifests, every Kubernetes object of the Helm release, so that a pull request\n" +
			"can show exactly what changes. A Helm deployment's chart is fetched (and cached) as the\n" +
			"agent fetches it: public addresses only unless --allow-fetch, credentials from\n" +
			"--fetch-credentials.\n" +
			"The cluster's domain (for the Ingress host) is --cluster-domain or, when the file sits\n" +
			"at clusters/<cluster_id>/<name>.yaml, the domain of clusters/<cluster_id>.yaml.\n" +
			"Problems are printed as FILE:LINE: FIELD: MESSAGE; exits 1 for a problem, 2 when the\n" +
			"file cannot be read.",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "manifests", Usage: "print the Kubernetes objects instead of values_yaml"},
			&cli.StringFlag{Name: "cluster-domain", Usage: "the cluster's domain (default: from the cluster record beside the file, else none: no Ingress)"},
			&cli.StringFlag{Name: "kube-version", Usage: "Kubernetes version to render for", Value: render.DefaultKubeVersion},
			&cli.StringFlag{Name: "cache", Usage: "cache folder for fetched charts", Value: defaultCacheDir(), EnvVars: []string{"MENGI_CACHE"}},
		}, fetchFlags()...),
		Action: runRender,
	}
}

func runRender(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("mengi render: name one deployment file", renderUnreadable)
	}
	file := c.Args().First()
	data, err := os.ReadFile(file)
	if err != nil {
		return cli.Exit("mengi render: "+err.Error(), renderUnreadable)
	}
	d, errs := schema.ParseFile(data)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(c.App.ErrWriter, problemLine(file, e))
		}
		return cli.Exit(fmt.Sprintf("mengi render: %s is not a valid deployment", file), renderProblems)
	}
	domain := c.String("cluster-domain")
	if !c.IsSet("cluster-domain") {
		domain = recordDomain(file, d.Spec.ClusterID)
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fetch, err := fetchOptions(c, log)
	if err != nil {
		return cli.Exit("mengi render: "+err.Error(), renderUnreadable)
	}
	r, err := render.New(render.Options{
		CacheDir:    c.String("cache"),
		KubeVersion: c.String("kube-version"),
		Logger:      log,
		Fetch:       fetch,
	})
	if err != nil {
		return cli.Exit("mengi render: "+err.Error(), renderUnreadable)
	}
	rel, err := r.Render(c.Context, d, &schema.Cluster{ID: d.Spec.ClusterID, Domain: domain})
	if err != nil {
		return renderProblem(c, file, data, err)
	}
	if !c.Bool("manifests") {
		_, err := fmt.Fprint(c.App.Writer, rel.ValuesYAML)
		return err
	}
	manifests, err := render.Manifests(c.Context, rel, c.String("kube-version"))
	if err != nil {
		return renderProblem(c, file, data, err)
	}
	_, err = fmt.Fprintf(c.App.Writer, "# release %s in namespace %s, chart %s\n%s", rel.Name, rel.Namespace, rel.ChartRef, manifests)
	return err
}

// renderProblem prints a render error as FILE:LINE: spec.FIELD: MESSAGE.
func renderProblem(c *cli.Context, file string, data []byte, err error) error {
	var re *render.Error
	if !errors.As(err, &re) || re.Field == "" {
		fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", file, err)
	} else {
		field := "spec." + re.Field
		if re.Field == "id" {
			field = "metadata.id"
		}
		fmt.Fprintln(c.App.ErrWriter, problemLine(file, schema.FieldError{Loc: locOf(field), Msg: re.Err.Error(), Line: fieldLine(data, field)}))
	}
	reason := "render failed"
	if re != nil {
		reason = re.Reason
	}
	return cli.Exit(fmt.Sprintf("mengi render: %s: %s", file, reason), renderProblems)
}

func locOf(field string) []any {
	var loc []any
	for _, p := range strings.Split(field, ".") {
		loc = append(loc, p)
	}
	return loc
}

// fieldLine finds the line of a dotted field (spec.config.ingress) in a
// YAML file: of the deepest key of it that is there, 0 when none is.
func fieldLine(data []byte, field string) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	node, line := doc.Content[0], 0
	for _, key := range strings.Split(field, ".") {
		if node.Kind != yaml.MappingNode {
			break
		}
		found := false
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == key {
				line, node, found = node.Content[i].Line, node.Content[i+1], true
				break
			}
		}
		if !found {
			break
		}
	}
	return line
}

// recordDomain reads the domain of the cluster record beside a deployment
// file at clusters/<cluster_id>/<name>.yaml ("" when there is none).
func recordDomain(file, clusterID string) string {
	dir := filepath.Dir(file)
	if filepath.Base(dir) != clusterID {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(dir), clusterID+".yaml"))
	if err != nil {
		return ""
	}
	var cl schema.Cluster
	if err := schema.DecodeRecord(data, &cl); err != nil {
		return ""
	}
	return cl.Domain
}

// defaultCacheDir is $XDG_CACHE_HOME/mengi (~/.cache/mengi), as for the
// local cluster's binaries.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "mengi")
}

package prcheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/releaseutil"

	"github.com/mengi-cloud/gitops/pushcheck"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// Report is the outcome of a pull request's check.
type Report struct {
	PR                    int
	Head, Base, MergeBase string
	Problems              []pushcheck.Problem
	Files                 []FileReport
}

// FileReport is one deployment file the pull request touches.
type FileReport struct {
	Path   string
	Change string // added, changed or deleted
	// ValuesDiff and ManifestDiffs are unified diffs from base to head
	// ("" when equal); one manifest diff per Kubernetes object, keyed
	// kind/namespace/name.
	ValuesDiff    string
	ManifestDiffs []ObjectDiff
	// Note says why the file could not be rendered on a side ("").
	Note string
}

// ObjectDiff is the diff of one Kubernetes object.
type ObjectDiff struct {
	Object string // Kind namespace/name
	Change string // added, changed or deleted
	Diff   string
}

// State is the commit status's state: success when nothing is wrong.
func (r *Report) State() string {
	if len(r.Problems) > 0 {
		return "failure"
	}
	return "success"
}

// maxDescription is the forges' limit of a status description.
const maxDescription = 140

// Summary is the status's one-line description.
func (r *Report) Summary() string {
	var s string
	switch n := len(r.Problems); n {
	case 0:
		s = fmt.Sprintf("%d deployment %s checked and rendered: no problems", len(r.Files), plural(len(r.Files), "file", "files"))
	default:
		s = fmt.Sprintf("%d %s; first: %s", n, plural(n, "problem", "problems"), r.Problems[0].String())
	}
	if len(s) > maxDescription {
		s = s[:maxDescription-3] + "..."
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// maxComment keeps the comment under the forges' limit (GitHub: 65536).
const maxComment = 60000

// Markdown is the PR comment: Marker, the problems, then per file the
// diff of values_yaml and of each object.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString(Marker + "\n")
	if len(r.Problems) == 0 {
		fmt.Fprintf(&b, "### ✅ Mengi: %s\n\n", r.Summary())
	} else {
		fmt.Fprintf(&b, "### ❌ Mengi: %d %s\n\n", len(r.Problems), plural(len(r.Problems), "problem", "problems"))
	}
	fmt.Fprintf(&b, "Checked `%s` against `main` at `%s`.\n\n", short(r.Head), short(r.Base))
	if len(r.Problems) > 0 {
		b.WriteString("```\n")
		for _, p := range r.Problems {
			b.WriteString(p.String() + "\n")
		}
		b.WriteString("```\n\n")
	}
	for _, f := range r.Files {
		section := f.markdown()
		if b.Len()+len(section) > maxComment {
			fmt.Fprintf(&b, "\n*The rendered diff of the other files is left out: it would not fit in a comment. `mengi render --manifests FILE` shows it.*\n")
			break
		}
		b.WriteString(section)
	}
	return b.String()
}

func (f FileReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### `%s` (%s)\n\n", f.Path, f.Change)
	if f.Note != "" {
		b.WriteString(f.Note + "\n\n")
	}
	if f.ValuesDiff != "" {
		fmt.Fprintf(&b, "<details><summary>values_yaml</summary>\n\n```diff\n%s```\n</details>\n\n", f.ValuesDiff)
	}
	if len(f.ManifestDiffs) > 0 {
		counts := map[string]int{}
		for _, d := range f.ManifestDiffs {
			counts[d.Change]++
		}
		var parts []string
		for _, c := range []string{"added", "changed", "deleted"} {
			if counts[c] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[c], c))
			}
		}
		fmt.Fprintf(&b, "<details><summary>Kubernetes objects: %s</summary>\n\n", strings.Join(parts, ", "))
		for _, d := range f.ManifestDiffs {
			fmt.Fprintf(&b, "**%s** (%s)\n\n```diff\n%s```\n\n", d.Object, d.Change, d.Diff)
		}
		b.WriteString("</details>\n\n")
	}
	if f.ValuesDiff == "" && len(f.ManifestDiffs) == 0 && f.Note == "" {
		b.WriteString("No change to what the agent applies.\n\n")
	}
	return b.String()
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// rendered is one side of a file, rendered.
type rendered struct {
	values  string
	objects map[string]string // Kind namespace/name → document
}

// renderFile renders a file's base and head and diffs them. A head that
// does not render is a problem of the file (unless it already has one).
func (c *Checker) renderFile(ctx context.Context, f pushcheck.File, invalid bool) (FileReport, *pushcheck.Problem) {
	fr := FileReport{Path: f.Path, Change: "changed"}
	switch {
	case f.Before == nil:
		fr.Change = "added"
	case f.After == nil:
		fr.Change = "deleted"
	}
	before, _ := c.renderSide(ctx, f.Before)
	var after *rendered
	var problem *pushcheck.Problem
	if f.After != nil && !invalid {
		var err error
		after, err = c.renderSide(ctx, f.After)
		if err != nil {
			problem = renderProblem(f.Path, f.After, err)
		}
	}
	if f.After != nil && after == nil {
		fr.Note = "The new file does not render (see the problems above); its diff is left out."
		return fr, problem
	}
	fr.ValuesDiff = unified(valuesOf(before), valuesOf(after), "values_yaml")
	fr.ManifestDiffs = objectDiffs(before, after)
	return fr, problem
}

func valuesOf(r *rendered) string {
	if r == nil {
		return ""
	}
	return r.values
}

// renderSide renders one version of a file (nil, nil when absent or not
// a valid deployment).
func (c *Checker) renderSide(ctx context.Context, data []byte) (*rendered, error) {
	if data == nil {
		return nil, nil
	}
	d, errs := schema.ParseFile(data)
	if errs != nil {
		return nil, nil
	}
	cl := c.opts.Registry.Cluster(d.Spec.ClusterID)
	if cl == nil {
		cl = &schema.Cluster{ID: d.Spec.ClusterID}
	}
	rel, err := c.opts.Renderer.Render(ctx, d, cl)
	if err != nil {
		return nil, err
	}
	text, err := render.Manifests(ctx, rel, c.opts.KubeVersion)
	if err != nil {
		return nil, err
	}
	return &rendered{values: rel.ValuesYAML, objects: splitObjects(text)}, nil
}

// renderProblem turns a render error into a problem at the field's line.
func renderProblem(path string, data []byte, err error) *pushcheck.Problem {
	var re *render.Error
	if !errors.As(err, &re) {
		return &pushcheck.Problem{Path: path, FieldError: schema.FieldError{Msg: "does not render: " + err.Error()}}
	}
	var loc []any
	if re.Field == "id" {
		loc = []any{"metadata", "id"}
	} else if re.Field != "" {
		loc = []any{"spec"}
		for _, p := range strings.Split(re.Field, ".") {
			loc = append(loc, p)
		}
	}
	return &pushcheck.Problem{Path: path, FieldError: schema.FieldError{Loc: loc, Line: schema.LineOf(data, loc...),
		Msg: re.Reason + ": " + re.Err.Error()}}
}

// splitObjects keys a manifest's documents by Kind namespace/name.
func splitObjects(manifest string) map[string]string {
	out := map[string]string{}
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name      string `yaml:"name"`
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
		}
		if yaml.Unmarshal([]byte(doc), &head) != nil || head.Kind == "" {
			continue
		}
		key := head.Kind + " " + head.Metadata.Name
		if head.Metadata.Namespace != "" {
			key = head.Kind + " " + head.Metadata.Namespace + "/" + head.Metadata.Name
		}
		out[key] = strings.TrimSpace(stripSource(doc)) + "\n"
	}
	return out
}

// stripSource drops Helm's "# Source:" lines, which only name templates.
func stripSource(doc string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(doc, "\n") {
		if !strings.HasPrefix(line, "# Source:") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// objectDiffs diffs the objects of two sides, in key order.
func objectDiffs(before, after *rendered) []ObjectDiff {
	keys := map[string]bool{}
	var a, b map[string]string
	if before != nil {
		a = before.objects
	}
	if after != nil {
		b = after.objects
	}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []ObjectDiff
	for _, k := range sorted {
		from, inA := a[k]
		to, inB := b[k]
		change := "changed"
		switch {
		case !inA:
			change = "added"
		case !inB:
			change = "deleted"
		case from == to:
			continue
		}
		out = append(out, ObjectDiff{Object: k, Change: change, Diff: unified(from, to, k)})
	}
	return out
}

// unified is the unified diff of two texts ("" when equal).
func unified(a, b, name string) string {
	if a == b {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: "main/" + name, ToFile: "pr/" + name, Context: 3,
	})
	if err != nil {
		return err.Error() + "\n"
	}
	return d
}

package render

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// Manifests renders rel the way `helm template` does (client side, no
// cluster; .Capabilities.KubeVersion is kubeVersion, "" for
// DefaultKubeVersion): the chart's CRDs (crds/, as they are), its objects
// in Helm's install order (through rel.PostRenderer), then its hooks except
// test hooks, each as a YAML document headed by "# Source: <template>". It
// is the rendering the agent applies; objects without a namespace go to
// rel.Namespace.
// Errors are *Error: InvalidSpec when the chart's values.schema.json refuses
// the values, RenderFailed when a template fails or does not make
// Kubernetes objects.
func Manifests(ctx context.Context, rel *Release, kubeVersion string) (string, error) {
	if kubeVersion == "" {
		kubeVersion = DefaultKubeVersion
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", renderFailed("", fmt.Errorf("kube version %q: %w", kubeVersion, err))
	}
	return manifests(ctx, rel, kv)
}

func manifests(ctx context.Context, rel *Release, kv *chartutil.KubeVersion) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", renderFailed("", err)
	}
	field := fieldOf(rel)
	if err := chartutil.ProcessDependenciesWithMerge(rel.Chart, rel.Values); err != nil {
		return "", renderFailed(field, fmt.Errorf("chart dependencies: %w", err))
	}
	coalesced, err := chartutil.CoalesceValues(rel.Chart, rel.Values)
	if err != nil {
		return "", renderFailed(field, fmt.Errorf("values: %w", err))
	}
	if err := chartutil.ValidateAgainstSchema(rel.Chart, coalesced); err != nil {
		msg := oneLine(err.Error())
		if rel.userChart {
			return "", invalidSpec(field, "the values do not meet the chart's values.schema.json: %s", msg)
		}
		return "", renderFailed(field, fmt.Errorf("the values do not meet the built-in chart's schema: %s", msg))
	}

	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = rel.Name, rel.Namespace
	install.KubeVersion = kv
	install.SkipSchemaValidation = true // checked above, to tell it apart
	install.PostRenderer = rel.PostRenderer
	out, err := install.RunWithContext(ctx, rel.Chart, rel.Values)
	if err != nil {
		return "", renderFailed(field, fmt.Errorf("chart %s: %w", rel.ChartRef, err))
	}

	// Helm installs CRDs as they are, before and without the post-renderer.
	var b strings.Builder
	for _, crd := range rel.Chart.CRDObjects() {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", crd.Filename, strings.TrimRight(string(crd.File.Data), "\n"))
	}
	b.WriteString(out.Manifest)
	for _, h := range out.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			continue
		}
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	text := b.String()
	if err := checkObjects(text); err != nil {
		return "", renderFailed(field, fmt.Errorf("chart %s: %w", rel.ChartRef, err))
	}
	return text, nil
}

// checkObjects makes sure every document is a Kubernetes object: apiVersion,
// kind and a name. Helm would only find out while applying.
func checkObjects(manifest string) error {
	docs := releaseutil.SplitManifests(manifest)
	for _, k := range releaseutil.BySplitManifestsOrder(keys(docs)) {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name         string `json:"name"`
				GenerateName string `json:"generateName"`
			} `json:"metadata"`
		}
		doc := docs[k]
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("%s: not a Kubernetes object: %w", source(doc), err)
		}
		if obj.APIVersion == "" && obj.Kind == "" && obj.Metadata.Name == "" && strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		if obj.APIVersion == "" || obj.Kind == "" || (obj.Metadata.Name == "" && obj.Metadata.GenerateName == "") {
			return fmt.Errorf("%s: a Kubernetes object needs apiVersion, kind and metadata.name", source(doc))
		}
	}
	return nil
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// source is the template a document came from, by its "# Source:" line.
func source(doc string) string {
	for _, line := range strings.Split(doc, "\n") {
		if s, ok := strings.CutPrefix(line, "# Source: "); ok {
			return s
		}
	}
	return "a document"
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// oneLine joins the lines of a multi-line message (Helm's schema errors
// list one problem per line) for status.error_message.
func oneLine(msg string) string {
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		if line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- ")); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, " ")
}

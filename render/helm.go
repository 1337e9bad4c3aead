package render

import (
	"context"
	"strings"

	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"

	"github.com/mengi-cloud/gitops/objectlabels"
	"github.com/mengi-cloud/gitops/schema"
)

// LabelDeploymentID is the label that ties a Kubernetes object to its
// deployment: on every object of the built-in chart, and put on every object
// of a user's chart by Release.PostRenderer.
const LabelDeploymentID = "mengi.cloud/deployment-id"

// renderHelm makes the release of a Helm deployment: the user's chart, and
// custom_values_yaml merged with the values Mengi sets (helmValues).
func (r *Renderer) renderHelm(ctx context.Context, d *schema.Deployment) (*Release, error) {
	s := &d.Spec
	repoURL, name, version := deref(s.HelmRepoURL), deref(s.HelmChartName), deref(s.HelmChartVersion)
	for _, f := range []struct{ field, value string }{
		{"helm_repo_url", repoURL}, {"helm_chart_name", name}, {"helm_chart_version", version},
	} {
		if f.value == "" {
			return nil, invalidSpec(f.field, "a Helm deployment needs %s", f.field)
		}
	}
	vals, err := helmValues(deref(s.CustomValuesYAML), d.Metadata.ID)
	if err != nil {
		return nil, err
	}
	ch, ref, err := r.fetchChart(ctx, repoURL, name, version)
	if err != nil {
		return nil, err
	}
	rel, err := newRelease(s.Name, ch, ref, vals)
	if err != nil {
		return nil, err
	}
	rel.PostRenderer = objectlabels.PostRenderer(map[string]string{LabelDeploymentID: d.Metadata.ID})
	rel.userChart = true
	return rel, nil
}

// helmValues merges custom_values_yaml with the one value Mengi sets for a
// user's chart, global.mengi.deploymentId (which wins over the user's). Helm
// passes `global` to the chart and all its subcharts; charts that know
// nothing of Mengi ignore it. The custom values are read exactly as Helm
// reads a values file.
func helmValues(custom, deploymentID string) (map[string]any, error) {
	if msg := schema.ValuesAliasProblem(custom); msg != "" {
		return nil, invalidSpec("custom_values_yaml", "%s", strings.TrimPrefix(msg, "custom_values_yaml "))
	}
	var doc any
	if err := yaml.Unmarshal([]byte(custom), &doc); err != nil {
		return nil, invalidSpec("custom_values_yaml", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: yaml: "))
	}
	if _, ok := doc.(map[string]any); !ok && doc != nil {
		return nil, invalidSpec("custom_values_yaml", "should be a YAML mapping of chart values, not %s", schema.KindOf(doc))
	}
	vals, err := chartutil.ReadValues([]byte(custom))
	if err != nil {
		return nil, invalidSpec("custom_values_yaml", "%s", err)
	}
	global, err := subMap(vals, "global", "global")
	if err != nil {
		return nil, err
	}
	mengi, err := subMap(global, "mengi", "global.mengi")
	if err != nil {
		return nil, err
	}
	mengi["deploymentId"] = deploymentID
	return vals, nil
}

// subMap returns m[key] (at path in the values) as a mapping, making it
// when missing.
func subMap(m map[string]any, key, path string) (map[string]any, error) {
	switch v := m[key].(type) {
	case map[string]any:
		return v, nil
	case nil:
		sub := map[string]any{}
		m[key] = sub
		return sub, nil
	default:
		b, _ := yaml.Marshal(v)
		return nil, invalidSpec("custom_values_yaml", "%s should be a mapping, not %s", path, strings.TrimSpace(string(b)))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fieldOf names the spec field a chart or values problem of rel is blamed
// on: custom_values_yaml for a user's chart; none for the built-in chart,
// whose values come from many fields and whose problems are bugs.
func fieldOf(rel *Release) string {
	if rel.userChart {
		return "custom_values_yaml"
	}
	return ""
}

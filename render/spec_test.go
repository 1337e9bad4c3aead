package render_test

import (
	"testing"

	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// TestInvalidSpec covers deployments the JSON Schema lets through but that
// cannot be rendered: each is refused with InvalidSpec at its field, and
// nothing is fetched.
func TestInvalidSpec(t *testing.T) {
	base := func(t *testing.T) *schema.Deployment { return readDeployment(t, "../examples/web_app.yaml") }
	cases := []struct {
		name  string
		edit  func(d *schema.Deployment)
		field string
		msg   string
	}{
		{name: "no docker_image", edit: func(d *schema.Deployment) { d.Spec.DockerImage = nil },
			field: "docker_image", msg: "a Docker deployment needs docker_image"},
		{name: "health check without a port", edit: func(d *schema.Deployment) { d.Spec.ContainerPort = nil },
			field: "config.health_check_path", msg: "a health check needs container_port"},
		{name: "ingress without a port", edit: func(d *schema.Deployment) {
			d.Spec.ContainerPort = nil
			d.Spec.Config = map[string]any{"ingress": true}
		}, field: "config.ingress", msg: "an Ingress needs container_port"},
		{name: "replicated database with storage", edit: func(d *schema.Deployment) {
			d.Spec.AppType, d.Spec.Replicas = schema.AppDatabase, ptr(int64(2))
		}, field: "replicas", msg: "a database with storage runs at most 1 replica"},
		{name: "Service name starting with a digit", edit: func(d *schema.Deployment) { d.Spec.Name = "1blog" },
			field: "name", msg: `"1blog" starts with a digit`},
		{name: "unknown app_type", edit: func(d *schema.Deployment) { d.Spec.AppType = "cronjob" },
			field: "app_type", msg: `unknown app_type "cronjob"`},
		{name: "unknown deployment_type", edit: func(d *schema.Deployment) { d.Spec.DeploymentType = "kustomize" },
			field: "deployment_type", msg: `unknown deployment_type "kustomize"`},
		{name: "no id", edit: func(d *schema.Deployment) { d.Metadata.ID = "" }, field: "id", msg: "no id"},
		{name: "Helm without a chart name", edit: func(d *schema.Deployment) {
			d.Spec.DeploymentType, d.Spec.DockerImage = schema.TypeHelm, nil
			d.Spec.HelmRepoURL, d.Spec.HelmChartVersion = ptr("https://charts.example.com"), ptr("1.0.0")
		}, field: "helm_chart_name", msg: "a Helm deployment needs helm_chart_name"},
		{name: "Helm repository of another scheme", edit: func(d *schema.Deployment) {
			d.Spec.DeploymentType, d.Spec.DockerImage = schema.TypeHelm, nil
			d.Spec.HelmRepoURL, d.Spec.HelmChartName, d.Spec.HelmChartVersion = ptr("ftp://charts.example.com"), ptr("x"), ptr("1.0.0")
		}, field: "helm_repo_url", msg: "is not an http://, https:// or oci:// URL"},
	}
	r := newRenderer(t, render.Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := base(t)
			tc.edit(d)
			_, err := r.Render(testContext(t), d, &schema.Cluster{Domain: testDomain})
			wantError(t, err, render.ReasonInvalidSpec, tc.field, tc.msg)
		})
	}
}

// TestNamespace pins the namespace rule.
func TestNamespace(t *testing.T) {
	for name, want := range map[string]string{"blog": "mengi-blog", "default": "mengi-default", "kube-system": "mengi-kube-system"} {
		if got := render.Namespace(name); got != want {
			t.Errorf("Namespace(%q) = %q; want %q", name, got, want)
		}
	}
}

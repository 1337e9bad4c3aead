package render_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// goldenKubeVersion is the Kubernetes version of the golden manifests.
const goldenKubeVersion = "v1.37.2"

const testDomain = "apps.example.com"

// goldenCases cover every app_type and option: each renders to
// testdata/golden/<name>.values.yaml (values_yaml) and
// <name>.manifests.yaml (the objects).
var goldenCases = []struct {
	name     string
	file     string
	domain   string
	endpoint string // want EndpointURL
	helm     bool   // the chart comes from the test repository
}{
	// The examples: storage, volumes, env with secret_ref, run_as_uid,
	// config keys, replicas, no port.
	{name: "web_app", file: "../examples/web_app.yaml", domain: testDomain, endpoint: "https://blog." + testDomain},
	{name: "api", file: "../examples/api.yaml", domain: testDomain, endpoint: "https://shop-api." + testDomain},
	{name: "database", file: "../examples/database.yaml", domain: testDomain},
	{name: "static_site", file: "../examples/static_site.yaml", domain: testDomain, endpoint: "https://docs." + testDomain},
	{name: "container", file: "../examples/container.yaml", domain: testDomain},
	// The cluster has no domain: no Ingress, no endpoint.
	{name: "web_app-no-domain", file: "../examples/web_app.yaml"},
	{name: "web_app-minimal", file: "testdata/deployments/web_app-minimal.yaml", domain: testDomain, endpoint: "https://hello." + testDomain},
	{name: "web_app-no-port", file: "testdata/deployments/web_app-no-port.yaml", domain: testDomain},
	{name: "web_app-no-ingress", file: "testdata/deployments/web_app-no-ingress.yaml", domain: testDomain},
	{name: "api-stopped-secrets", file: "testdata/deployments/api-stopped-secrets.yaml", domain: testDomain, endpoint: "https://quiet-api." + testDomain},
	{name: "database-volumes-ingress", file: "testdata/deployments/database-volumes-ingress.yaml", domain: testDomain, endpoint: "https://analytics-db." + testDomain},
	{name: "database-no-port-no-storage", file: "testdata/deployments/database-no-port-no-storage.yaml", domain: testDomain},
	{name: "static_site-default-probe", file: "testdata/deployments/static_site-default-probe.yaml", domain: testDomain, endpoint: "https://landing." + testDomain},
	{name: "container-ingress", file: "testdata/deployments/container-ingress.yaml", domain: testDomain, endpoint: "https://hooks." + testDomain},
	{name: "helm-apptype-docker", file: "testdata/deployments/helm-apptype-docker.yaml", domain: testDomain},
	// Helm deployments, with the chart testdata/charts/mini.
	{name: "helm-chart-custom", file: "testdata/deployments/helm-chart-custom.yaml", domain: testDomain, helm: true},
	{name: "helm-chart-defaults", file: "testdata/deployments/helm-chart-defaults.yaml", helm: true},
}

func TestGolden(t *testing.T) {
	mini := packageChart(t, "testdata/charts/mini")
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: mini})
	r := newRenderer(t, render.Options{CacheDir: t.TempDir(), Fetch: allowLoopback})
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			d := readDeployment(t, tc.file)
			if tc.helm {
				d = helmDeployment(t, tc.file, repo.RepoURL())
			}
			cluster := &schema.Cluster{Domain: tc.domain}
			rel, err := r.Render(ctx, d, cluster)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if rel.Name != d.Spec.Name || rel.Namespace != "mengi-"+d.Spec.Name {
				t.Errorf("release %s in %s; want %s in mengi-%s", rel.Name, rel.Namespace, d.Spec.Name, d.Spec.Name)
			}
			if rel.EndpointURL != tc.endpoint {
				t.Errorf("EndpointURL %q; want %q", rel.EndpointURL, tc.endpoint)
			}
			wantRef := "mengi-app " + render.BuiltinChartVersion
			if tc.helm {
				wantRef = "mini 0.1.0 sha256:"
			}
			if !strings.HasPrefix(rel.ChartRef, wantRef) {
				t.Errorf("ChartRef %q; want %q...", rel.ChartRef, wantRef)
			}
			if (rel.PostRenderer != nil) != tc.helm {
				t.Errorf("PostRenderer %v; want one only for user charts", rel.PostRenderer)
			}
			manifests, err := render.Manifests(ctx, rel, goldenKubeVersion)
			if err != nil {
				t.Fatalf("Manifests: %v", err)
			}
			// Values is exactly what ValuesYAML says, and rendering left it so.
			back, err := chartutil.ReadValues([]byte(rel.ValuesYAML))
			if err != nil || !reflect.DeepEqual(map[string]any(back), rel.Values) {
				t.Errorf("Values differ from ValuesYAML read back (%v):\n%#v\n%#v", err, rel.Values, back)
			}
			checkGolden(t, tc.name+".values.yaml", rel.ValuesYAML)
			checkGolden(t, tc.name+".manifests.yaml", manifests)

			// Deterministic: the same input gives the same bytes.
			again, err := r.Render(ctx, readDeploymentAgain(t, tc.file, tc.helm, repo.RepoURL()), cluster)
			if err != nil {
				t.Fatalf("second Render: %v", err)
			}
			manifests2, err := render.Manifests(ctx, again, goldenKubeVersion)
			if err != nil {
				t.Fatalf("second Manifests: %v", err)
			}
			if again.ValuesYAML != rel.ValuesYAML || manifests2 != manifests {
				t.Errorf("a second rendering differs")
			}
		})
	}
}

func readDeploymentAgain(t *testing.T, file string, helm bool, repoURL string) *schema.Deployment {
	if helm {
		return helmDeployment(t, file, repoURL)
	}
	return readDeployment(t, file)
}

// TestGoldenFilesHaveCases keeps testdata/golden free of files no case
// writes any more.
func TestGoldenFilesHaveCases(t *testing.T) {
	want := map[string]bool{"chart.sum": true}
	for _, tc := range goldenCases {
		want[tc.name+".values.yaml"], want[tc.name+".manifests.yaml"] = true, true
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("testdata/golden/%s belongs to no golden case: delete it", e.Name())
		}
	}
}

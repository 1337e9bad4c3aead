package render_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/cli"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// TestHelmInstall installs releases the way the agent will (Helm SDK
// install into Release.Namespace, with Release.PostRenderer) and checks
// that every object of the release carries the deployment's label, for
// the built-in chart and for a user's chart. Not parallel: it sets the
// HELM_*_HOME variables.
func TestHelmInstall(t *testing.T) {
	home := t.TempDir()
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		t.Setenv(v, filepath.Join(home, v))
	}
	kubeconfig := clustertest.Kubeconfig(t)
	cs := kubernetes.NewForConfigOrDie(clustertest.RESTConfig(t))
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	r := newRenderer(t, render.Options{Fetch: allowLoopback})

	cases := []struct {
		name      string
		d         *schema.Deployment
		labelled  []string // "kind/name" of the objects with the label
		unlabeled []string // hooks: Helm does not post-render them
	}{
		{name: "built-in chart", d: readDeployment(t, "../examples/web_app.yaml"),
			labelled: []string{"Deployment/blog", "Service/blog", "Ingress/blog", "Secret/blog-env", "PersistentVolumeClaim/blog-data"}},
		{name: "user chart", d: helmDeployment(t, helmCase, repo.RepoURL()),
			labelled:  []string{"Deployment/grafana-mini", "Service/grafana-mini", "ConfigMap/grafana-mini"},
			unlabeled: []string{"ConfigMap/grafana-mini-installed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rel, err := r.Render(ctx, tc.d, &schema.Cluster{Domain: testDomain})
			if err != nil {
				t.Fatal(err)
			}
			settings := cli.New()
			settings.KubeConfig = kubeconfig
			settings.SetNamespace(rel.Namespace)
			cfg := new(action.Configuration)
			if err := cfg.Init(settings.RESTClientGetter(), rel.Namespace, "secret", t.Logf); err != nil {
				t.Fatal(err)
			}
			install := action.NewInstall(cfg)
			install.ReleaseName, install.Namespace, install.CreateNamespace = rel.Name, rel.Namespace, true
			install.PostRenderer = rel.PostRenderer
			t.Cleanup(func() {
				_ = cs.CoreV1().Namespaces().Delete(context.Background(), rel.Namespace, metav1.DeleteOptions{})
			})
			if _, err := install.RunWithContext(ctx, rel.Chart, rel.Values); err != nil {
				t.Fatalf("helm install %s (%s) into %s: %v", rel.Name, rel.ChartRef, rel.Namespace, err)
			}
			id := tc.d.Metadata.ID
			for _, obj := range tc.labelled {
				if got := objectLabel(ctx, t, cs, rel.Namespace, obj); got != id {
					t.Errorf("%s in %s: label %s=%q; want %q", obj, rel.Namespace, render.LabelDeploymentID, got, id)
				}
			}
			for _, obj := range tc.unlabeled {
				if got := objectLabel(ctx, t, cs, rel.Namespace, obj); got != "" {
					t.Errorf("%s (a hook) has label %s=%q; hooks are not post-rendered", obj, render.LabelDeploymentID, got)
				}
			}
		})
	}
}

// objectLabel returns the deployment-id label of kind/name in ns.
func objectLabel(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, obj string) string {
	t.Helper()
	kind, name := filepath.Split(obj)
	var (
		m   metav1.Object
		err error
	)
	get := metav1.GetOptions{}
	switch kind {
	case "Deployment/":
		m, err = cs.AppsV1().Deployments(ns).Get(ctx, name, get)
	case "Service/":
		m, err = cs.CoreV1().Services(ns).Get(ctx, name, get)
	case "Ingress/":
		m, err = cs.NetworkingV1().Ingresses(ns).Get(ctx, name, get)
	case "ConfigMap/":
		m, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, name, get)
	case "Secret/":
		m, err = cs.CoreV1().Secrets(ns).Get(ctx, name, get)
	case "PersistentVolumeClaim/":
		m, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, get)
	default:
		t.Fatalf("unknown kind in %s", obj)
	}
	if err != nil {
		t.Fatalf("get %s: %v", obj, err)
	}
	return m.GetLabels()[render.LabelDeploymentID]
}

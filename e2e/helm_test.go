package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// miniChart is the test chart of package render.
const miniChart = "../render/testdata/charts/mini"

// packageChart packages the chart in dir as `helm package` would, with
// its version set to version, and without its crds/ folder: the agent
// refuses a user's chart with CRDs (they are cluster-scoped).
func packageChart(t *testing.T, dir, version string) []byte {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch.Metadata.Version = version
	ch.Files = slices.DeleteFunc(ch.Files, func(f *chart.File) bool { return strings.HasPrefix(f.Name, "crds/") })
	return saveChart(t, ch)
}

// saveChart packages ch as `helm package` would.
func saveChart(t *testing.T, ch *chart.Chart) []byte {
	t.Helper()
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// chartRepo serves a Helm chart repository on loopback:
// <URL>/charts/index.yaml and the archives it lists.
func chartRepo(t *testing.T, name string, archives map[string][]byte) string {
	t.Helper()
	files := map[string][]byte{}
	var index strings.Builder
	fmt.Fprintf(&index, "apiVersion: v1\nentries:\n  %s:\n", name)
	for version, data := range archives {
		file := fmt.Sprintf("%s-%s.tgz", name, version)
		files[file] = data
		sum := sha256.Sum256(data)
		fmt.Fprintf(&index, "    - name: %s\n      version: %s\n      urls: [%q]\n      digest: %s\n",
			name, version, file, hex.EncodeToString(sum[:]))
	}
	index.WriteString("generated: \"2026-11-27T00:00:00Z\"\n")
	files["index.yaml"] = []byte(index.String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		data, ok := files[strings.TrimPrefix(req.URL.Path, "/charts/")]
		if !ok || !strings.HasPrefix(req.URL.Path, "/charts/") {
			http.NotFound(w, req)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/charts"
}

// TestHelmDeployment: a deployment of a user's chart from a chart
// repository on loopback becomes a running Helm release with the custom
// values; a new chart version is an upgrade of the same release.
func TestHelmDeployment(t *testing.T) {
	t.Parallel()
	repo := chartRepo(t, "mini", map[string][]byte{
		"0.1.0": packageChart(t, miniChart, "0.1.0"),
		"0.2.0": packageChart(t, miniChart, "0.2.0"),
	})
	e := newEnv(t)
	const name = "helm-mini"
	code, d := e.call(http.MethodPost, "/deployments", map[string]any{
		"cluster_id": e.cluster.ID, "name": name, "app_type": "helm", "deployment_type": "helm",
		"helm_repo_url": repo, "helm_chart_name": "mini", "helm_chart_version": "0.1.0",
		"custom_values_yaml": "replicaCount: 2\nmessage: hello from e2e\n",
	})
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, d)
	}
	id := d["id"].(string)
	d = e.waitFor(id, 60*time.Second, "running", status("running"))
	values, _ := d["values_yaml"].(string)
	if !strings.Contains(values, "deploymentId: "+id) || !strings.Contains(values, "replicaCount: 2") || d["endpoint_url"] != nil {
		t.Errorf("running Helm deployment: %v", d)
	}

	ns := e.ns(name)
	ok, note := e.deploymentReady(ns, name+"-mini", 2)
	if !ok {
		t.Errorf("the chart's Deployment: %s", note)
	}
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(context.Background(), name+"-mini", metav1.GetOptions{})
	if err != nil || cm.Data["MESSAGE"] != "hello from e2e" || cm.Data["DEPLOYMENT_ID"] != id {
		t.Errorf("the chart's ConfigMap: %v %v", err, cm.Data)
	}
	if cm != nil && cm.Labels["mengi.cloud/deployment-id"] != id {
		t.Errorf("ConfigMap labels %v: no mengi.cloud/deployment-id", cm.Labels)
	}
	recs := e.releaseSecrets(name)
	if got := revisions(recs); got != "1:deployed" {
		t.Fatalf("Helm records: %s", got)
	}
	if l := recs[0].Labels; l["mengi.cloud/managed"] != "true" || l["mengi.cloud/deployment-id"] != id {
		t.Errorf("release labels %v", l)
	}

	// A new chart version is an upgrade: revision 2 of the same release.
	code, d = e.call(http.MethodPatch, "/deployments/"+id, map[string]any{"helm_chart_version": "0.2.0"})
	if code != http.StatusOK {
		t.Fatalf("PATCH: %d %v", code, d)
	}
	e.waitFor(id, 60*time.Second, "running 0.2.0", func(d map[string]any) bool {
		return d["status"] == "running" && d["helm_chart_version"] == "0.2.0"
	})
	if got := revisions(e.releaseSecrets(name)); got != "1:superseded 2:deployed" {
		t.Errorf("Helm records after the upgrade: %s", got)
	}
	chart := e.git("show", "main:"+e.path(name))
	if !strings.Contains(chart, "helm_chart_version: 0.2.0") || !strings.Contains(chart, "phase: running") {
		t.Errorf("file after the upgrade:\n%s", chart)
	}
}

// TestHelmPolicyViolation: a user's chart that would make a
// ClusterRoleBinding of cluster-admin and a privileged Deployment gets
// status error, reason PolicyViolation, naming both; nothing of it is
// applied (not even its namespace), and it is not tried again.
func TestHelmPolicyViolation(t *testing.T) {
	t.Parallel()
	ch := &chart.Chart{Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "takeover", Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/admin.yaml", Data: []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Release.Name }}-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: default, namespace: {{ .Release.Namespace }}}
`)}, {Name: "templates/root.yaml", Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: root
spec:
  selector: {matchLabels: {app: root}}
  template:
    metadata: {labels: {app: root}}
    spec:
      containers:
        - {name: c, image: busybox:1.36, securityContext: {privileged: true}}
`)}}}
	repo := chartRepo(t, "takeover", map[string][]byte{"0.1.0": saveChart(t, ch)})
	e := newEnv(t)
	const name = "helm-takeover"
	code, d := e.call(http.MethodPost, "/deployments", map[string]any{
		"cluster_id": e.cluster.ID, "name": name, "app_type": "helm", "deployment_type": "helm",
		"helm_repo_url": repo, "helm_chart_name": "takeover", "helm_chart_version": "0.1.0",
	})
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, d)
	}
	id := d["id"].(string)
	d = e.waitFor(id, 60*time.Second, "error", status("error"))
	msg, _ := d["error_message"].(string)
	for _, want := range []string{
		"ClusterRoleBinding " + name + "-admin (cluster-scoped)",
		"Deployment " + e.ns(name) + "/root (privileged: container",
		"a deployment may only create objects in its namespace " + e.ns(name),
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error_message %q does not say %q", msg, want)
		}
	}
	if file := e.git("show", "main:"+e.path(name)); !strings.Contains(file, "reason: PolicyViolation") {
		t.Errorf("file:\n%s", file)
	}

	ctx := context.Background()
	if _, err := e.kube.RbacV1().ClusterRoleBindings().Get(ctx, name+"-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRoleBinding: %v; want it not found", err)
	}
	if _, err := e.kube.CoreV1().Namespaces().Get(ctx, e.ns(name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s: %v; want nothing applied", e.ns(name), err)
	}
	e.waitSettled(30 * time.Second)
	if n := e.logs.count("step=apply", "deployment=local/"+name); n != 1 {
		t.Errorf("%d applies logged; want 1: a policy violation waits for a new spec", n)
	}

	// It can be deleted: there is nothing to uninstall.
	if code, d := e.call(http.MethodDelete, "/deployments/"+id, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %v", code, d)
	}
	eventually(t, 60*time.Second, "the file removed", func() (bool, string) {
		code, d := e.call(http.MethodGet, "/deployments/"+id, nil)
		return code == http.StatusNotFound, fmt.Sprint(code, d)
	})
}

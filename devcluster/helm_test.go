package devcluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

// TestHelmLifecycle installs, upgrades and uninstalls testdata/mini with
// the Helm SDK and checks the release and its objects in the cluster.
// Not parallel: it sets the HELM_*_HOME variables.
func TestHelmLifecycle(t *testing.T) {
	cs := kubernetes.NewForConfigOrDie(clustertest.RESTConfig(t))
	ns := newNamespace(t, cs)
	home := t.TempDir()
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		t.Setenv(v, filepath.Join(home, v))
	}
	settings := cli.New()
	settings.KubeConfig = clustertest.Kubeconfig(t)
	// Before RESTClientGetter: otherwise the release lands in ns but its
	// objects in "default".
	settings.SetNamespace(ns)
	cfg := new(action.Configuration)
	if err := cfg.Init(settings.RESTClientGetter(), ns, "secret", t.Logf); err != nil {
		t.Fatalf("helm init: %v", err)
	}
	chart, err := loader.Load(filepath.Join("testdata", "mini"))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = "mini", ns
	install.Wait, install.Timeout = true, 2*time.Minute
	begin := time.Now()
	rel, err := install.RunWithContext(ctx, chart, nil)
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Logf("installed in %s", time.Since(begin).Round(time.Millisecond))
	wantRelease(t, rel, 1, release.StatusDeployed)
	waitDeploymentAvailable(ctx, t, cs, ns, "mini", 1)
	waitPVCBound(ctx, t, cs, ns, "mini-data")
	wantReleaseSecrets(ctx, t, cs, ns, map[string]string{"v1": "deployed"})

	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace, upgrade.Wait, upgrade.Timeout = ns, true, 2*time.Minute
	rel, err = upgrade.RunWithContext(ctx, "mini", chart, map[string]any{"replicas": 3, "message": "upgraded"})
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	wantRelease(t, rel, 2, release.StatusDeployed)
	waitDeploymentAvailable(ctx, t, cs, ns, "mini", 3)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "mini-config", metav1.GetOptions{})
	if err != nil || cm.Data["message"] != "upgraded" {
		t.Errorf("ConfigMap after upgrade: %v, %v; want message=upgraded", cm.Data, err)
	}
	wantReleaseSecrets(ctx, t, cs, ns, map[string]string{"v1": "superseded", "v2": "deployed"})
	hist, err := action.NewHistory(cfg).Run("mini")
	if err != nil || len(hist) != 2 {
		t.Errorf("helm history: %d releases, %v; want 2", len(hist), err)
	}

	uninstall := action.NewUninstall(cfg)
	uninstall.Wait, uninstall.Timeout = true, 2*time.Minute
	if _, err := uninstall.Run("mini"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "mini", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("Deployment still there after uninstall: %v", err)
	}
	wantReleaseSecrets(ctx, t, cs, ns, map[string]string{})
	list := action.NewList(cfg)
	list.All = true
	if rels, err := list.Run(); err != nil || len(rels) != 0 {
		t.Errorf("helm list after uninstall: %d releases, %v; want none", len(rels), err)
	}
}

func wantRelease(t *testing.T, rel *release.Release, version int, status release.Status) {
	t.Helper()
	if rel.Version != version || rel.Info.Status != status {
		t.Fatalf("release %s: revision %d %s; want revision %d %s", rel.Name, rel.Version, rel.Info.Status, version, status)
	}
}

// wantReleaseSecrets checks Helm's release records in the cluster: one
// Secret per revision, labelled with the revision's status.
func wantReleaseSecrets(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, want map[string]string) {
	t.Helper()
	secrets, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=mini"})
	if err != nil {
		t.Fatalf("list release secrets: %v", err)
	}
	got := map[string]string{}
	for _, s := range secrets.Items {
		got["v"+s.Labels["version"]] = s.Labels["status"]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("release secrets in %s: %v; want %v", ns, got, want)
	}
}

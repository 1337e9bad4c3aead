package cluster_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mengi-cloud/gitops/cluster"
)

const deploymentIDLabel = "mengi.cloud/deployment-id"

// applyAndWait applies r and waits for it to be healthy, logging how long
// each took.
func applyAndWait(t *testing.T, ctx context.Context, c *cluster.Conn, r cluster.Release) *cluster.Applied {
	t.Helper()
	begin := time.Now()
	a, err := c.Apply(ctx, r)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	applied := time.Since(begin)
	if err := c.Wait(ctx, a, 60*time.Second); err != nil {
		t.Fatalf("Wait after revision %d: %v", a.Revision, err)
	}
	t.Logf("revision %d: apply %s, apply→healthy %s", a.Revision,
		applied.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	return a
}

// TestLifecycle: install → healthy → upgrade (replicas, image) → healthy →
// object labels → Owned (not an unlabelled release) → Drift (deleted and
// hand-changed Deployments) → Apply heals → Uninstall removes everything.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 5*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	id := "dep-" + ns
	r := cluster.Release{
		Name: "shop", Namespace: ns, Chart: loadChart(t),
		Values:       map[string]any{"replicas": 2},
		Labels:       map[string]string{deploymentIDLabel: id},
		ObjectLabels: map[string]string{deploymentIDLabel: id, cluster.LabelManaged: "true"},
	}

	// Install.
	a := applyAndWait(t, ctx, c, r)
	if a.Revision != 1 || a.Name != "shop" || a.Namespace != ns {
		t.Errorf("install: %s/%s revision %d", a.Namespace, a.Name, a.Revision)
	}
	wantObjects := []string{
		"ConfigMap " + ns + "/shop-config", "Deployment " + ns + "/shop", "Deployment " + ns + "/shop-worker",
		"PersistentVolumeClaim " + ns + "/shop-data", "Service " + ns + "/shop",
	}
	if got := objectNames(a.Objects); !slices.Equal(got, wantObjects) {
		t.Errorf("Objects = %v; want %v", got, wantObjects)
	}
	nsObj, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels[cluster.LabelManaged] != "true" {
		t.Errorf("namespace %s: labels %v, %v; want %s=true", ns, nsObj.GetLabels(), err, cluster.LabelManaged)
	}

	// Upgrade: 3 replicas, a new image.
	r.Values = map[string]any{"replicas": 3, "image": "nginx:1.28"}
	a = applyAndWait(t, ctx, c, r)
	if a.Revision != 2 {
		t.Errorf("upgrade: revision %d; want 2", a.Revision)
	}
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.28" || d.Status.AvailableReplicas != 3 {
		t.Errorf("after upgrade: replicas %d (available %d), image %s; want 3, nginx:1.28",
			*d.Spec.Replicas, d.Status.AvailableReplicas, d.Spec.Template.Spec.Containers[0].Image)
	}

	// Every object carries ObjectLabels.
	for _, o := range a.Objects {
		mapping, err := c.RESTMapper().RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			t.Fatal(err)
		}
		live, err := c.Dynamic().Resource(mapping.Resource).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l := live.GetLabels(); l[deploymentIDLabel] != id || l[cluster.LabelManaged] != "true" {
			t.Errorf("%s labels %v; want the ObjectLabels", o, l)
		}
	}

	// Owned lists it, not an unlabelled release in another namespace.
	other := namespaceName(t, c)
	createNamespace(t, c, other)
	installUnlabelled(t, ctx, c, other, "foreign")
	owned, err := c.Owned(ctx)
	if err != nil {
		t.Fatalf("Owned: %v", err)
	}
	var mine *cluster.Owned
	for i, o := range owned {
		if o.Namespace == other {
			t.Errorf("Owned lists the unlabelled release %s/%s", o.Namespace, o.Name)
		}
		if o.Namespace == ns && o.Name == "shop" {
			mine = &owned[i]
		}
	}
	if mine == nil {
		t.Fatalf("Owned = %+v; want %s/shop in it", owned, ns)
	}
	if mine.Status != "deployed" || mine.Revision != 2 || mine.Labels[deploymentIDLabel] != id ||
		mine.Labels[cluster.LabelManaged] != "true" || mine.Labels["owner"] != "" || mine.Chart != "app-0.1.0" {
		t.Errorf("Owned entry %+v", *mine)
	}
	// Apply and Uninstall leave the unlabelled release alone.
	var nm *cluster.NotManagedError
	if _, err := c.Apply(ctx, cluster.Release{Name: "foreign", Namespace: other, Chart: loadChart(t)}); !errors.As(err, &nm) {
		t.Errorf("Apply of an unlabelled release = %v; want *NotManagedError", err)
	}
	if err := c.Uninstall(ctx, "foreign", other, time.Minute); !errors.As(err, &nm) {
		t.Errorf("Uninstall of an unlabelled release = %v; want *NotManagedError", err)
	}

	// No drift yet.
	if items, err := c.Drift(ctx, "shop", ns); err != nil || len(items) != 0 {
		t.Fatalf("Drift = %q, %v; want none", items, err)
	}
	// Drift: delete the worker, scale and re-image the web Deployment by hand.
	if err := c.Clientset().AppsV1().Deployments(ns).Delete(ctx, "shop-worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := `{"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"web","image":"nginx:9.9"}]}}}}`
	if _, err := c.Clientset().AppsV1().Deployments(ns).Patch(ctx, "shop", types.StrategicMergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	items, err := c.Drift(ctx, "shop", ns)
	if err != nil {
		t.Fatalf("Drift: %v", err)
	}
	slices.Sort(items)
	want := []string{
		"Deployment " + ns + "/shop: container web image nginx:9.9, want nginx:1.28",
		"Deployment " + ns + "/shop: replicas 5, want 3",
		"Deployment " + ns + "/shop-worker: deleted",
	}
	slices.Sort(want)
	if !slices.Equal(items, want) {
		t.Errorf("Drift =\n%s\nwant\n%s", strings.Join(items, "\n"), strings.Join(want, "\n"))
	}

	// Apply with the same chart and values heals it.
	a = applyAndWait(t, ctx, c, r)
	if items, err := c.Drift(ctx, "shop", ns); err != nil || len(items) != 0 {
		t.Errorf("Drift after re-apply = %q, %v; want none", items, err)
	}
	d, err = c.Clientset().AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.28" {
		t.Errorf("after heal: %v", err)
	}
	if _, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "shop-worker", metav1.GetOptions{}); err != nil {
		t.Errorf("worker after heal: %v", err)
	}

	// Uninstall removes every object and the namespace.
	begin := time.Now()
	if err := c.Uninstall(ctx, "shop", ns, time.Minute); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	t.Logf("uninstall took %s", time.Since(begin).Round(time.Millisecond))
	if _, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after Uninstall: %v; want not found", ns, err)
	}
	for _, o := range a.Objects {
		mapping, _ := c.RESTMapper().RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if _, err := c.Dynamic().Resource(mapping.Resource).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s after Uninstall: %v; want not found", o, err)
		}
	}
	owned, err = c.Owned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range owned {
		if o.Namespace == ns {
			t.Errorf("Owned after Uninstall lists %s/%s", o.Namespace, o.Name)
		}
	}
	// Uninstalling again is a no-op; Drift of a missing release says so.
	if err := c.Uninstall(ctx, "shop", ns, time.Minute); err != nil {
		t.Errorf("second Uninstall: %v", err)
	}
	if _, err := c.Drift(ctx, "shop", ns); !errors.Is(err, cluster.ErrReleaseNotFound) {
		t.Errorf("Drift of an uninstalled release = %v; want ErrReleaseNotFound", err)
	}
}

func objectNames(objs []cluster.ObjectRef) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	slices.Sort(out)
	return out
}

// installUnlabelled installs testdata/app with the Helm SDK, without
// Mengi's labels, as someone else's release; it is uninstalled at the end.
func installUnlabelled(t *testing.T, ctx context.Context, c *cluster.Conn, ns, name string) {
	t.Helper()
	cfg, err := c.ActionConfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = name, ns
	in.Labels = map[string]string{"team": "someone-else"}
	if _, err := in.Run(loadChart(t), map[string]any{"worker": map[string]any{"enabled": false}}); err != nil {
		t.Fatalf("helm install %s/%s: %v", ns, name, err)
	}
	t.Cleanup(func() {
		cfg, err := c.ActionConfig(context.Background(), ns)
		if err == nil {
			_, err = action.NewUninstall(cfg).Run(name)
		}
		if err != nil {
			t.Logf("cleanup: uninstall %s/%s: %v", ns, name, err)
		}
	})
}

package cluster_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mengi-cloud/gitops/cluster"
)

// TestUninstallSharedNamespace: the namespace goes with the last release in
// it, not before.
func TestUninstallSharedNamespace(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	noWorker := map[string]any{"worker": map[string]any{"enabled": false}}
	for _, name := range []string{"one", "two"} {
		if _, err := c.Apply(ctx, cluster.Release{Name: name, Namespace: ns, Chart: loadChart(t), Values: noWorker}); err != nil {
			t.Fatalf("Apply %s: %v", name, err)
		}
	}
	if err := c.Uninstall(ctx, "one", ns, time.Minute); err != nil {
		t.Fatalf("Uninstall one: %v", err)
	}
	if _, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace after the first Uninstall: %v; want it kept for release two", err)
	}
	if _, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "two", metav1.GetOptions{}); err != nil {
		t.Errorf("release two's Deployment: %v", err)
	}
	if err := c.Uninstall(ctx, "two", ns, time.Minute); err != nil {
		t.Fatalf("Uninstall two: %v", err)
	}
	if _, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace after the last Uninstall: %v; want it gone", err)
	}
}

// TestUninstallKeepsUnmanagedNamespace: a namespace Mengi did not create
// stays.
func TestUninstallKeepsUnmanagedNamespace(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	createNamespace(t, c, ns)
	if _, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t)}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.Uninstall(ctx, "app", ns, time.Minute); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	got, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp != nil {
		t.Errorf("unmanaged namespace after Uninstall: %v, deleting %v; want it kept", err, got.GetDeletionTimestamp())
	}
	if _, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after Uninstall: %v", err)
	}
}

// TestUninstallStuckNamespace: an object in the namespace with a finalizer
// nobody removes keeps it Terminating; Uninstall reports that within its
// timeout instead of hanging.
func TestUninstallStuckNamespace(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	if _, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t),
		Values: map[string]any{"worker": map[string]any{"enabled": false}}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	const finalizer = "mengi.cloud/test-block"
	cms := c.Clientset().CoreV1().ConfigMaps(ns)
	_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "blocker", Finalizers: []string{finalizer}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // let the namespace go
		cms.Patch(ctx, "blocker", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})

	// The namespace controller names the finalizer in the namespace's
	// conditions only once it has deleted the rest, which takes longer
	// while other tests delete namespaces too.
	timeout := 20 * time.Second
	begin := time.Now()
	err = c.Uninstall(ctx, "app", ns, timeout)
	took := time.Since(begin)
	t.Logf("Uninstall: %v (after %s)", err, took.Round(time.Millisecond))
	var se *cluster.StuckError
	if !errors.As(err, &se) {
		t.Fatalf("Uninstall = %v (%T); want *StuckError", err, err)
	}
	if se.Object.Kind != "Namespace" || se.Object.Name != ns || !strings.Contains(se.Reason, finalizer) {
		t.Errorf("StuckError %+v; want the namespace, naming finalizer %s", se, finalizer)
	}
	if took > timeout+3*time.Second {
		t.Errorf("Uninstall took %s with a timeout of %s", took, timeout)
	}
	// The release itself is gone.
	if _, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after Uninstall: %v", err)
	}
}

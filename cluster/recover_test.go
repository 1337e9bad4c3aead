package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mengi-cloud/gitops/cluster"
)

// setStatus rewrites a stored revision's status, as an agent that crashed
// mid-operation leaves it.
func setStatus(t *testing.T, cfg *action.Configuration, name string, version int, status release.Status) {
	t.Helper()
	rel, err := cfg.Releases.Get(name, version)
	if err != nil {
		t.Fatal(err)
	}
	rel.SetStatus(status, "simulated crash")
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
}

// revisions returns "version:status" of every stored revision, oldest first.
func revisions(t *testing.T, cfg *action.Configuration, name string) []string {
	t.Helper()
	if _, err := cfg.Releases.History(name); err != nil {
		t.Fatal(err)
	}
	return revisionsOrNone(cfg, name)
}

// revisionsOrNone is revisions for polling: nil while the release does
// not exist yet (or cannot be read).
func revisionsOrNone(cfg *action.Configuration, name string) []string {
	hist, err := cfg.Releases.History(name)
	if err != nil {
		return nil
	}
	releaseutil.SortByRevision(hist)
	var out []string
	for _, r := range hist {
		out = append(out, fmt.Sprintf("%d:%s", r.Version, r.Info.Status))
	}
	return out
}

// TestRecoverPendingInstall: the agent crashed during the first install;
// the release is stuck in pending-install with its objects half made. Apply
// uninstalls it and installs again: one release, revision 1, deployed.
func TestRecoverPendingInstall(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	r := cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t), Values: map[string]any{"replicas": 1}}
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cfg, err := c.ActionConfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	setStatus(t, cfg, "app", 1, release.StatusPendingInstall)
	// Plain Helm refuses to upgrade it.
	if _, err := action.NewUpgrade(cfg).Run("app", loadChart(t), nil); err == nil {
		t.Fatal("helm upgrade of a pending-install release succeeded; the test does not simulate what it should")
	}

	r.Values = map[string]any{"replicas": 2}
	a := applyAndWait(t, ctx, c, r)
	if got, want := revisions(t, cfg, "app"), []string{"1:deployed"}; !slices.Equal(got, want) {
		t.Errorf("revisions %v; want %v", got, want)
	}
	if a.Revision != 1 {
		t.Errorf("Applied revision %d; want 1", a.Revision)
	}
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment after recovery: %v", err)
	}
}

// TestRecoverPendingUpgrade: the agent crashed during an upgrade that added
// the worker; revision 1 is still deployed, revision 2 pending-upgrade.
// Apply marks 2 failed, rolls back to 1 (removing the worker 2 added) and
// upgrades: exactly one deployed revision, and no leftover worker.
func TestRecoverPendingUpgrade(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	noWorker := map[string]any{"enabled": false}
	r := cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t), Values: map[string]any{"worker": noWorker}}
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatalf("Apply 1: %v", err)
	}
	r.Values = map[string]any{"worker": map[string]any{"enabled": true}}
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatalf("Apply 2: %v", err)
	}
	cfg, err := c.ActionConfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	setStatus(t, cfg, "app", 1, release.StatusDeployed)
	setStatus(t, cfg, "app", 2, release.StatusPendingUpgrade)

	r.Values = map[string]any{"replicas": 3, "worker": noWorker}
	a := applyAndWait(t, ctx, c, r)
	want := []string{"1:superseded", "2:failed", "3:superseded", "4:deployed"}
	if got := revisions(t, cfg, "app"); !slices.Equal(got, want) {
		t.Errorf("revisions %v; want %v", got, want)
	}
	if a.Revision != 4 {
		t.Errorf("Applied revision %d; want 4", a.Revision)
	}
	if _, err := c.Clientset().AppsV1().Deployments(ns).Get(ctx, "app-worker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("worker added by the interrupted upgrade: %v; want it deleted", err)
	}
}

// TestRecoverInterruptedUninstall: a release left "uninstalling" is
// uninstalled for good and installed again.
func TestRecoverInterruptedUninstall(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	r := cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t)}
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cfg, err := c.ActionConfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	setStatus(t, cfg, "app", 1, release.StatusUninstalling)
	applyAndWait(t, ctx, c, r)
	if got, want := revisions(t, cfg, "app"), []string{"1:deployed"}; !slices.Equal(got, want) {
		t.Errorf("revisions %v; want %v", got, want)
	}
}

// TestApplyInterrupted cuts an install short for real: a pre-install hook
// never finishes, and Apply's context ends while Helm waits for it. The
// release stays pending-install, as after a crash; the next Apply recovers
// it without a second release.
func TestApplyInterrupted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	r := cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t), Values: map[string]any{"blockingHook": true}}
	cfg, err := c.ActionConfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the install short once Helm is waiting for the hook (the release
	// is recorded as pending-install), however long it took to get there.
	short, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Apply(short, r)
		done <- err
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !slices.Equal(revisionsOrNone(cfg, "app"), []string{"1:pending-install"}) {
		if time.Now().After(deadline) {
			t.Fatal("the install never reached pending-install")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	begin := time.Now()
	err = <-done
	took := time.Since(begin)
	t.Logf("interrupted Apply: %v (returned %s after its context ended)", err, took.Round(time.Millisecond))
	if err == nil {
		t.Fatal("Apply with a hook that never finishes succeeded")
	}
	if took > 10*time.Second {
		t.Errorf("Apply returned %s after its context ended", took)
	}
	if got, want := revisions(t, cfg, "app"), []string{"1:pending-install"}; !slices.Equal(got, want) {
		t.Fatalf("revisions after the interrupted install %v; want %v", got, want)
	}

	r.Values = nil
	a := applyAndWait(t, ctx, c, r)
	if got, want := revisions(t, cfg, "app"), []string{"1:deployed"}; !slices.Equal(got, want) || a.Revision != 1 {
		t.Errorf("revisions %v (applied %d); want %v", got, a.Revision, want)
	}
}

package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/cluster"
)

// waitUnhealthy applies values, expects Wait to fail within timeout and
// returns its *HealthError.
func waitUnhealthy(t *testing.T, values map[string]any, timeout time.Duration) (*cluster.HealthError, string) {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	a, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t), Values: values})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	begin := time.Now()
	err = c.Wait(ctx, a, timeout)
	took := time.Since(begin)
	t.Logf("Wait: %v (after %s)", err, took.Round(time.Millisecond))
	var he *cluster.HealthError
	if !errors.As(err, &he) {
		t.Fatalf("Wait = %v (%T); want *HealthError", err, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait error does not wrap context.DeadlineExceeded")
	}
	if took < timeout || took > timeout+3*time.Second {
		t.Errorf("Wait returned after %s; want just over %s", took, timeout)
	}
	return he, ns
}

// TestWaitPVCUnbound: a claim of a StorageClass that does not exist stays
// Pending, and Wait names it (it comes before the Deployment that mounts
// it, in Helm's install order).
func TestWaitPVCUnbound(t *testing.T) {
	t.Parallel()
	he, ns := waitUnhealthy(t, map[string]any{"storageClass": "does-not-exist", "worker": map[string]any{"enabled": false}}, 8*time.Second)
	want := cluster.ObjectRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: ns, Name: "app-data"}
	if he.Object != want || he.Reason != "Pending" {
		t.Errorf("HealthError %+v; want %v Pending", he, want)
	}
	if !strings.HasPrefix(he.Error(), "PersistentVolumeClaim "+ns+"/app-data: Pending") {
		t.Errorf("message %q", he.Error())
	}
	if !strings.Contains(he.Detail, "does-not-exist") {
		t.Logf("no event names the StorageClass yet (Detail %q)", he.Detail)
	}
}

// TestWaitUnschedulable: pods with a nodeSelector no node matches stay
// Pending; Wait names the Deployment and why its pods do not run.
func TestWaitUnschedulable(t *testing.T) {
	t.Parallel()
	he, ns := waitUnhealthy(t, map[string]any{
		"replicas":     2,
		"nodeSelector": map[string]any{"mengi.cloud/no-such-node": "true"},
		"worker":       map[string]any{"enabled": false},
	}, 8*time.Second)
	want := cluster.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "app"}
	if he.Object != want || he.Reason != "0 of 2 replicas available" {
		t.Errorf("HealthError %+v; want %v: 0 of 2 replicas available", he, want)
	}
	if !strings.Contains(he.Detail, "Unschedulable") || !strings.Contains(he.Detail, "node") {
		t.Errorf("Detail %q; want the pod's scheduling failure", he.Detail)
	}
}

// TestWaitZeroReplicas: a Deployment scaled to 0 is healthy.
func TestWaitZeroReplicas(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 2*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	a, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t),
		Values: map[string]any{"replicas": 0, "worker": map[string]any{"replicas": 0}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.Wait(ctx, a, 30*time.Second); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

// TestApplyCancelled: a cancelled context stops Apply at once.
func TestApplyCancelled(t *testing.T) {
	t.Parallel()
	c := connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: namespaceName(t, c), Chart: loadChart(t)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled context = %v; want context.Canceled", err)
	}
}

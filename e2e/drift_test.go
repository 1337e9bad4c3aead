package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mengi-cloud/gitops/schema"
)

// TestDriftRestored: a Deployment deleted by hand comes back, one scaled
// by hand is scaled back, and each time the status in Git says what was
// found and when it was corrected.
func TestDriftRestored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const name = "drift-app"
	id := e.create(name, map[string]any{"replicas": 2})
	e.waitFor(id, 60*time.Second, "running", status("running"))
	ns := e.ns(name)
	ctx := context.Background()
	deps := e.kube.AppsV1().Deployments(ns)
	orig, err := deps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	revs := len(e.releaseSecrets(name))

	// Deleted by hand.
	if err := deps.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the Deployment recreated", func() (bool, string) {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if d.UID == orig.UID {
			return false, "still the old object"
		}
		return e.deploymentReady(ns, name, 2)
	})
	st := e.waitDrift(t, id, "Deployment "+ns+"/"+name+": deleted")
	if st.DriftCorrectedAt == nil || st.Phase != schema.PhaseRunning {
		t.Errorf("status after the deletion was healed: %+v", st)
	}
	if n := len(e.releaseSecrets(name)); n <= revs {
		t.Errorf("%d Helm revisions after healing; want more than %d", n, revs)
	}

	// Scaled by hand.
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if _, err := deps.UpdateScale(ctx, name, scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st = e.waitDrift(t, id, "Deployment "+ns+"/"+name+": replicas 5, want 2")
	eventually(t, 60*time.Second, "scaled back to 2", func() (bool, string) { return e.deploymentReady(ns, name, 2) })
	if st.DriftCorrectedAt == nil || st.Phase != schema.PhaseRunning {
		t.Errorf("status after the scale was healed: %+v", st)
	}

	// An image changed by hand is reverted too.
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"` + name + `","image":"nginx:1.28"}]}}}}`
	if _, err := deps.Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitDrift(t, id, "image nginx:1.28, want nginx:1.27")
	eventually(t, 60*time.Second, "image restored", func() (bool, string) {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		img := d.Spec.Template.Spec.Containers[0].Image
		return img == "nginx:1.27", img
	})

	// The namespace deleted by hand (every object and Helm's records with
	// it): the release is installed again. What the drift check sees first
	// depends on the order the namespace controller deletes in.
	if err := e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitDrift(t, id, ": deleted")
	var record types.UID
	eventually(t, 90*time.Second, "the release installed again", func() (bool, string) {
		recs := e.releaseSecrets(name)
		if got := revisions(recs); got != "1:deployed" {
			return false, "Helm records: " + got
		}
		record = recs[0].UID
		return e.deploymentReady(ns, name, 2)
	})

	// Helm's release records lost (the objects stay): the release is
	// installed again, adopting its objects.
	err = e.kube.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	e.waitDrift(t, id, "release "+ns+"/"+name+": deleted")
	eventually(t, 60*time.Second, "a new release record", func() (bool, string) {
		recs := e.releaseSecrets(name)
		got := revisions(recs)
		return got == "1:deployed" && recs[0].UID != record, "Helm records: " + got
	})
	if ok, note := e.deploymentReady(ns, name, 2); !ok {
		t.Errorf("after the release was installed again: %s", note)
	}
}

// waitDrift waits until the deployment's status in Git reports drift
// containing want.
func (e *env) waitDrift(t *testing.T, id, want string) *schema.Status {
	t.Helper()
	var st *schema.Status
	eventually(t, 60*time.Second, "drift reported: "+want, func() (bool, string) {
		r := e.record(id)
		if r == nil || r.Deployment() == nil || r.Deployment().Status == nil {
			return false, "no status"
		}
		st = r.Deployment().Status
		return strings.Contains(st.Drift, want), st.Drift
	})
	return st
}

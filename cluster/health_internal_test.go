package cluster

import (
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func ptr[T any](v T) *T { return &v }

func TestDeploymentHealth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   *int32
		gen    int64
		status appsv1.DeploymentStatus
		ok     bool
		reason string
	}{
		{"healthy", ptr[int32](3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}, true, ""},
		{"not observed", ptr[int32](3), 3, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}, false, "rollout not yet observed (generation 3, observed 2)"},
		{"zero", ptr[int32](0), 1, appsv1.DeploymentStatus{ObservedGeneration: 1}, true, ""},
		{"default one", nil, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1}, false, "0 of 1 replicas available"},
		{"updating", ptr[int32](3), 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3}, false, "1 of 3 replicas updated"},
		{"old pods", ptr[int32](3), 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3}, false, "1 old replicas pending termination"},
		{"unavailable", ptr[int32](3), 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1}, false, "1 of 3 replicas available"},
	} {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: tc.gen}, Spec: appsv1.DeploymentSpec{Replicas: tc.spec}, Status: tc.status}
		ok, reason := deploymentHealth(d)
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("%s: %v %q; want %v %q", tc.name, ok, reason, tc.ok, tc.reason)
		}
	}
}

func TestStatefulSetHealth(t *testing.T) {
	rolling := appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}
	for _, tc := range []struct {
		name     string
		replicas int32
		strategy appsv1.StatefulSetUpdateStrategy
		status   appsv1.StatefulSetStatus
		ok       bool
		reason   string
	}{
		{"healthy", 2, rolling, appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, CurrentRevision: "a", UpdateRevision: "a"}, true, ""},
		{"rolling", 2, rolling, appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"}, false, "1 of 2 replicas updated"},
		{"revision", 2, rolling, appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"}, false, "rolling update to revision b in progress"},
		{"not ready", 2, rolling, appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1}, false, "1 of 2 replicas ready"},
		{"on delete", 2, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}, appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"}, true, ""},
		{"zero", 0, rolling, appsv1.StatefulSetStatus{ObservedGeneration: 1}, true, ""},
	} {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr(tc.replicas), UpdateStrategy: tc.strategy}, Status: tc.status}
		ok, reason := statefulSetHealth(s)
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("%s: %v %q; want %v %q", tc.name, ok, reason, tc.ok, tc.reason)
		}
	}
}

func TestHealthPVC(t *testing.T) {
	for phase, want := range map[string]string{"Bound": "", "Pending": "Pending", "": "Pending", "Lost": "Lost"} {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
			"metadata": map[string]any{"name": "x"}, "status": map[string]any{"phase": phase}}}
		ok, reason := health(u)
		if ok != (want == "") || reason != want {
			t.Errorf("phase %q: %v %q; want %q", phase, ok, reason, want)
		}
	}
}

func TestWorkloadDrift(t *testing.T) {
	obj := func(replicas any, image string) *unstructured.Unstructured {
		spec := map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "web", "image": image}}}}}
		if replicas != nil {
			spec["replicas"] = replicas
		}
		return &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	}
	got := workloadDrift(obj(float64(2), "a:1"), obj(int64(5), "a:2"))
	want := []string{"replicas 5, want 2", "container web image a:2, want a:1"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("drift %q; want %q", got, want)
	}
	// Replicas not in the manifest (an autoscaler owns them): not compared.
	if got := workloadDrift(obj(nil, "a:1"), obj(int64(5), "a:1")); len(got) != 0 {
		t.Errorf("drift %q; want none", got)
	}
}

func TestCopyChart(t *testing.T) {
	sub := &chart.Chart{Metadata: &chart.Metadata{Name: "sub"}, Values: map[string]any{"x": 1}}
	top := &chart.Chart{Metadata: &chart.Metadata{Name: "top", Dependencies: []*chart.Dependency{{Name: "sub", Condition: "sub.enabled"}}},
		Values: map[string]any{"sub": map[string]any{"enabled": true}, "list": []any{map[string]any{"a": 1}}}}
	top.SetDependencies(sub)
	cp := copyChart(top)
	cp.Metadata.Dependencies[0].Enabled = true
	cp.Values["sub"].(map[string]any)["enabled"] = false
	cp.Values["list"].([]any)[0].(map[string]any)["a"] = 2
	cp.SetDependencies()
	if top.Metadata.Dependencies[0].Enabled || top.Values["sub"].(map[string]any)["enabled"] != true ||
		top.Values["list"].([]any)[0].(map[string]any)["a"] != 1 || len(top.Dependencies()) != 1 {
		t.Errorf("changing the copy changed the original: %+v", top)
	}
	if cp.Metadata.Name != "top" || copyChart(sub).Metadata.Dependencies != nil {
		t.Errorf("copy lost data or made nil dependencies non-nil")
	}
}

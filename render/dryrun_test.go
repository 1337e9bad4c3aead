package render_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/releaseutil"

	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

// TestGoldenServerDryRun applies every object of every golden rendering to
// the real local cluster with server-side apply in dry-run mode: the API
// server's own validation and admission, not a schema guess.
func TestGoldenServerDryRun(t *testing.T) {
	cfg := clustertest.RESTConfig(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	// The check has teeth: the API server refuses an invalid object.
	t.Run("an invalid object is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ns := createNamespace(ctx, t, cs, "dryrun-invalid")
		svc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "bad"},
			"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(70000)}}},
		}}
		_, err := dyn.Resource(corev1.SchemeGroupVersion.WithResource("services")).Namespace(ns).Apply(ctx, "bad", svc,
			metav1.ApplyOptions{FieldManager: "mengi", Force: true, DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), "spec.ports[0].port") {
			t.Errorf("dry-run of a Service on port 70000: %v; want a refusal", err)
		}
	})
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			data, err := os.ReadFile(goldenPath(tc.name + ".manifests.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			ns := createNamespace(ctx, t, cs, "dryrun-"+tc.name)
			docs := releaseutil.SplitManifests(string(data))
			applied := 0
			for _, key := range releaseutil.BySplitManifestsOrder(keys(docs)) {
				obj := &unstructured.Unstructured{}
				if err := yaml.Unmarshal([]byte(docs[key]), &obj.Object); err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				if len(obj.Object) == 0 {
					continue
				}
				gvk := obj.GroupVersionKind()
				mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Errorf("%s %s: %v", gvk, obj.GetName(), err)
					continue
				}
				var res dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
				if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
					obj.SetNamespace(ns)
					res = dyn.Resource(mapping.Resource).Namespace(ns)
				}
				_, err = res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{
					FieldManager: "mengi", Force: true, DryRun: []string{metav1.DryRunAll},
				})
				if err != nil {
					t.Errorf("server-side dry-run of %s %s: %v", gvk.Kind, obj.GetName(), err)
				}
				applied++
			}
			if applied == 0 {
				t.Error("no objects in the golden manifests")
			}
			t.Logf("%d objects accepted", applied)
		})
	}
}

// createNamespace makes a namespace for one test and deletes it after.
func createNamespace(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	name = strings.ToLower(strings.NewReplacer("_", "-", "/", "-").Replace(name))
	if len(name) > 50 {
		name = name[:50]
	}
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: strings.TrimRight(name, "-") + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Drift compares the live objects of a release with its latest revision's
// manifest and returns one human-readable line per difference, in manifest
// order; none means no drift. Compared:
//
//   - every object: missing ("Deployment shop/shop: deleted") or being
//     deleted;
//   - Deployments and StatefulSets: spec.replicas when the manifest sets it
//     ("Deployment shop/shop: replicas 5, want 2"), and the image of each
//     container and init container ("Deployment shop/shop: container web
//     image nginx:1.28, want nginx:1.27").
//
// Apply with the same chart and values heals all of these (Helm's
// three-way merge recreates missing objects and restores changed fields).
// A release that does not exist gives a *ReleaseError wrapping
// ErrReleaseNotFound.
func (c *Conn) Drift(ctx context.Context, name, namespace string) ([]string, error) {
	cfg, err := c.actionConfig(ctx, namespace)
	if err != nil {
		return nil, c.releaseErr("drift", namespace, name, err)
	}
	hist, err := history(cfg, name)
	if err != nil {
		return nil, c.releaseErr("drift", namespace, name, err)
	}
	if len(hist) == 0 {
		return nil, c.releaseErr("drift", namespace, name, ErrReleaseNotFound)
	}
	objs, err := c.manifestObjects(ctx, hist[len(hist)-1].Manifest, namespace)
	if err != nil {
		return nil, c.releaseErr("drift", namespace, name, err)
	}
	var items []string
	for _, o := range objs {
		live, err := c.resource(o).Get(ctx, o.Ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			items = append(items, o.Ref.String()+": deleted")
			continue
		case err != nil:
			return nil, c.releaseErr("drift", namespace, name, fmt.Errorf("get %s: %w", o.Ref, err))
		case live.GetDeletionTimestamp() != nil:
			items = append(items, o.Ref.String()+": being deleted")
			continue
		}
		gvk := o.Mapping.GroupVersionKind
		if gvk.Group == "apps" && (gvk.Kind == "Deployment" || gvk.Kind == "StatefulSet") {
			for _, d := range workloadDrift(o.Object, live) {
				items = append(items, o.Ref.String()+": "+d)
			}
		}
	}
	return items, nil
}

// workloadDrift compares the replicas and container images of a Deployment
// or StatefulSet.
func workloadDrift(want, live *unstructured.Unstructured) []string {
	var out []string
	if w, ok := intField(want.Object, "spec", "replicas"); ok {
		l, found := intField(live.Object, "spec", "replicas")
		if !found {
			l = 1
		}
		if l != w {
			out = append(out, fmt.Sprintf("replicas %d, want %d", l, w))
		}
	}
	for _, kind := range []string{"initContainers", "containers"} {
		liveImages := containerImages(live, kind)
		wantContainers, _, _ := unstructured.NestedSlice(want.Object, "spec", "template", "spec", kind)
		for _, x := range wantContainers {
			ct, _ := x.(map[string]any)
			name, image := fmt.Sprint(ct["name"]), fmt.Sprint(ct["image"])
			got, ok := liveImages[name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("container %s missing", name))
			case got != image:
				out = append(out, fmt.Sprintf("container %s image %s, want %s", name, got, image))
			}
		}
	}
	return out
}

// containerImages maps container names to images in a workload's pod
// template.
func containerImages(obj *unstructured.Unstructured, kind string) map[string]string {
	cts, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", kind)
	out := make(map[string]string, len(cts))
	for _, x := range cts {
		if ct, ok := x.(map[string]any); ok {
			out[fmt.Sprint(ct["name"])] = fmt.Sprint(ct["image"])
		}
	}
	return out
}

// intField reads an integer however the decoder typed it.
func intField(obj map[string]any, path ...string) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

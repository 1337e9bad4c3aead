package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// ObjectRef names a Kubernetes object. Namespace is empty for cluster-scoped
// kinds.
type ObjectRef struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// String returns "Kind namespace/name", or "Kind name" when cluster-scoped,
// e.g. "Deployment shop/shop".
func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// GroupVersionKind returns the object's GVK.
func (o ObjectRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(o.APIVersion, o.Kind)
}

// manifestObject is one object of a release manifest as rendered, with its
// REST mapping.
type manifestObject struct {
	Ref     ObjectRef
	Object  *unstructured.Unstructured
	Mapping *meta.RESTMapping
}

// manifestObjects parses a release manifest (Helm's stored YAML stream) into
// its objects, in manifest order, with namespaces filled in the way Helm
// applies them: namespaced objects without one go to namespace.
func (c *Conn) manifestObjects(ctx context.Context, manifest, namespace string) ([]manifestObject, error) {
	items, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	objs := make([]manifestObject, 0, len(items))
	for _, item := range items {
		o, err := c.manifestObject(ctx, item, namespace)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// decodeManifest parses a YAML stream into its objects in order, the items
// of a List in its place; empty documents are skipped.
func decodeManifest(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse manifest: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if !u.IsList() {
			objs = append(objs, u)
			continue
		}
		list, err := u.ToList()
		if err != nil {
			return nil, fmt.Errorf("parse manifest: %s: %w", u.GetKind(), err)
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	}
}

func (c *Conn) manifestObject(ctx context.Context, u *unstructured.Unstructured, namespace string) (manifestObject, error) {
	ref := ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	if ref.Kind == "" || ref.Name == "" {
		return manifestObject{}, fmt.Errorf("parse manifest: an object without kind or name (apiVersion %q, kind %q, name %q)",
			ref.APIVersion, ref.Kind, ref.Name)
	}
	mapping, err := c.restMapping(ctx, ref.GroupVersionKind())
	if err != nil {
		return manifestObject{}, fmt.Errorf("%s: %w", ref, c.unreachable(err))
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if ref.Namespace == "" {
			ref.Namespace = namespace
		}
	} else {
		ref.Namespace = ""
	}
	return manifestObject{Ref: ref, Object: u, Mapping: mapping}, nil
}

// restMapping maps a kind to its resource, refreshing the cached discovery
// once when the kind is unknown (a CRD installed since it was filled).
func (c *Conn) restMapping(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.ResetWithContext(ctx)
		m, err = c.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// resource returns the dynamic client for an object.
func (c *Conn) resource(o manifestObject) dynamic.ResourceInterface {
	r := c.dynamic.Resource(o.Mapping.Resource)
	if o.Ref.Namespace == "" {
		return r
	}
	return r.Namespace(o.Ref.Namespace)
}

// refs returns the ObjectRefs of objs.
func refs(objs []manifestObject) []ObjectRef {
	out := make([]ObjectRef, len(objs))
	for i, o := range objs {
		out[i] = o.Ref
	}
	return out
}

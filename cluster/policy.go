package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	psa "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// PolicyError reports the objects of a release that its deployment may not
// create; Apply refused the release and applied nothing of it. A release
// is confined to its namespace: it may create namespaced objects there and
// nowhere else (no cluster-scoped kind, decided by the cluster's
// discovery, and no object in another namespace), and unless
// Release.AllowPrivileged, its pods must meet the Pod Security "baseline"
// level (no privileged containers, host namespaces, hostPath volumes,
// hostPorts, added capabilities, ...).
type PolicyError struct {
	Namespace  string      // the release's namespace
	Violations []Violation // crds/ first, then the manifest, then the hooks
}

// Error implements error, e.g. "ClusterRoleBinding pwn (cluster-scoped) is
// not allowed: a deployment may only create objects in its namespace
// mengi-shop".
func (e *PolicyError) Error() string {
	items := make([]string, len(e.Violations))
	placed, pods := false, false
	for i, v := range e.Violations {
		items[i] = v.String()
		placed = placed || v.Placement != ""
		pods = pods || len(v.PodSecurity) > 0
	}
	var rules []string
	if placed {
		rules = append(rules, "a deployment may only create objects in its namespace "+e.Namespace)
	}
	if pods {
		rules = append(rules, `its pods must meet Pod Security "baseline" (not privileged, no host namespaces, `+
			`hostPath volumes or hostPorts) unless its cluster allows privileged workloads`)
	}
	subject := items[0] + " is not allowed"
	if n := len(items); n > 1 {
		subject = strings.Join(items[:n-1], ", ") + " and " + items[n-1] + " are not allowed"
	}
	return subject + ": " + strings.Join(rules, "; ")
}

// Violation is one object a release may not create, and why.
type Violation struct {
	// Object is the object as Helm would apply it: a namespaced object
	// without a namespace is in the release's namespace.
	Object ObjectRef
	// Source is "crds/" or "hook" for the objects of a chart's crds/
	// folder and its hooks; empty for the manifest.
	Source string
	// Placement says why the object may not be where it is:
	// "cluster-scoped", "another namespace" or "kind not served by the
	// cluster" (its scope cannot be told); empty when it may.
	Placement string
	// PodSecurity lists the Pod Security "baseline" checks its pod (or pod
	// template) fails, e.g. `privileged: container "web" must not set
	// securityContext.privileged=true`.
	PodSecurity []string
}

// String returns the object and its reasons, e.g. "ClusterRoleBinding pwn
// (cluster-scoped)" or "Job mengi-shop/setup (hook; host namespaces:
// hostNetwork=true)".
func (v Violation) String() string {
	var reasons []string
	if v.Source != "" {
		reasons = append(reasons, v.Source)
	}
	if v.Placement != "" {
		reasons = append(reasons, v.Placement)
	}
	reasons = append(reasons, v.PodSecurity...)
	return v.Object.String() + " (" + strings.Join(reasons, "; ") + ")"
}

// confinement is what one release may create.
type confinement struct {
	namespace       string
	allowPrivileged bool
}

// podSecurityLevel is the Pod Security level enforced on the namespace,
// the API server's own check of the same pod rules.
func (c confinement) podSecurityLevel() psa.Level {
	if c.allowPrivileged {
		return psa.LevelPrivileged
	}
	return psa.LevelBaseline
}

// refuse returns a *PolicyError for vs; nil when there are none.
func (c confinement) refuse(vs []Violation) error {
	if len(vs) == 0 {
		return nil
	}
	return &PolicyError{Namespace: c.namespace, Violations: vs}
}

// newPodSecurity returns the evaluator of Kubernetes' Pod Security
// Admission, the library kube-apiserver enforces the levels with.
func newPodSecurity() (policy.Evaluator, error) {
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return nil, fmt.Errorf("pod security checks: %w", err)
	}
	return ev, nil
}

// check returns the violations among the objects of a YAML stream (a
// manifest, a hook's manifest, a crds/ file), each marked with source.
// Errors are for what cannot be checked: a stream that does not parse, an
// object without a kind, a cluster that does not answer discovery.
func (c *Conn) check(ctx context.Context, conf confinement, manifest, source string) ([]Violation, error) {
	objs, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	var out []Violation
	for _, u := range objs {
		v := Violation{Source: source, Object: ObjectRef{
			APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}}
		if v.Object.Kind == "" {
			return nil, fmt.Errorf("an object without kind (apiVersion %q, name %q)", v.Object.APIVersion, v.Object.Name)
		}
		if v.Object.Name == "" {
			v.Object.Name = u.GetGenerateName() + "*"
		}
		if v.Placement, err = c.placement(ctx, conf, &v.Object); err != nil {
			return nil, err
		}
		if !conf.allowPrivileged {
			v.PodSecurity = c.podSecurityViolations(u)
		}
		if v.Placement != "" || len(v.PodSecurity) > 0 {
			out = append(out, v)
		}
	}
	return out, nil
}

// placement tells why ref may not go where it would (see
// Violation.Placement), using the cluster's discovery for the kind's
// scope; "" when it may. It sets ref.Namespace as Helm would apply it.
func (c *Conn) placement(ctx context.Context, conf confinement, ref *ObjectRef) (string, error) {
	mapping, err := c.restMapping(ctx, ref.GroupVersionKind())
	switch {
	case meta.IsNoMatchError(err):
		return "kind not served by the cluster", nil
	case err != nil:
		return "", fmt.Errorf("%s: %w", ref, c.unreachable(err))
	case mapping.Scope.Name() != meta.RESTScopeNameNamespace:
		ref.Namespace = ""
		return "cluster-scoped", nil
	case ref.Namespace == "":
		ref.Namespace = conf.namespace
	case ref.Namespace != conf.namespace:
		return "another namespace", nil
	}
	return "", nil
}

// podSecurityViolations evaluates the pod an object makes, if any (see
// podTemplate), against Pod Security "baseline", and returns the checks it
// fails as "reason: detail".
func (c *Conn) podSecurityViolations(u *unstructured.Unstructured) []string {
	tmpl, ok := podTemplate(u)
	if !ok {
		return nil
	}
	var pod corev1.PodTemplateSpec
	data, err := json.Marshal(tmpl)
	if err == nil {
		err = json.Unmarshal(data, &pod)
	}
	if err != nil {
		return []string{"pod template not readable: " + err.Error()}
	}
	baseline := psa.LevelVersion{Level: psa.LevelBaseline, Version: psa.LatestVersion()}
	var out []string
	for _, r := range c.podSecurity.EvaluatePod(baseline, &pod.ObjectMeta, &pod.Spec) {
		if r.Allowed {
			continue
		}
		s := r.ForbiddenReason
		if r.ForbiddenDetail != "" {
			s += ": " + r.ForbiddenDetail
		}
		out = append(out, s)
	}
	return out
}

// podTemplate returns the pod an object makes, as a map with metadata and
// spec: a Pod itself, a PodTemplate's template, or the spec.template (a
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, or any kind shaped
// alike, custom ones included) or spec.jobTemplate.spec.template (a
// CronJob) that has a spec.
func podTemplate(u *unstructured.Unstructured) (map[string]any, bool) {
	obj := u.Object
	switch gvk := u.GroupVersionKind(); {
	case gvk.Group == "" && gvk.Kind == "Pod":
		_, ok := obj["spec"].(map[string]any)
		return map[string]any{"metadata": obj["metadata"], "spec": obj["spec"]}, ok
	case gvk.Group == "" && gvk.Kind == "PodTemplate":
		t, ok := obj["template"].(map[string]any)
		return t, ok
	}
	for _, path := range [][]string{{"spec", "template"}, {"spec", "jobTemplate", "spec", "template"}} {
		t, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
		if m, ok := t.(map[string]any); ok {
			if _, ok := m["spec"].(map[string]any); ok {
				return m, true
			}
		}
	}
	return nil, false
}

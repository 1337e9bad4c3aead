package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// explainTimeout bounds the lookups that explain an unhealthy object after
// Wait gave up (pods, events), which may run after the caller's context
// ended.
const explainTimeout = 5 * time.Second

// Wait polls the objects of a (every Options.PollInterval) until all are
// healthy, or timeout passes, or ctx ends:
//
//   - Deployments and StatefulSets are rolled out: the controller observed
//     the latest generation, and updated, ready and available replicas all
//     reach spec.replicas (no old pods left); 0 replicas is healthy.
//   - DaemonSets have every scheduled pod updated and available.
//   - PersistentVolumeClaims are Bound.
//   - Every other object exists.
//
// On timeout (or when ctx ends) it returns a *HealthError naming the first
// unhealthy object in manifest order and why, e.g. "Deployment shop/shop:
// 1 of 3 replicas available (pod shop-7d9c-x2x: Unschedulable: 0/2 nodes are
// available: ...)"; errors.Is(err, context.DeadlineExceeded) holds.
func (c *Conn) Wait(ctx context.Context, a *Applied, timeout time.Duration) error {
	if a == nil {
		return errors.New("wait: no release")
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *HealthError
	err := c.poll(ctx, func(ctx context.Context) (bool, error) {
		he := c.unhealthy(ctx, a.Objects)
		switch {
		case he == nil:
		case last == nil:
			last = he
		case he.unread:
			// An object that could not be read (the client's rate limit, a
			// slow answer) says less than an earlier check's finding.
		case ctx.Err() == nil:
			// A check cut short by the deadline says less than the one before.
			last = he
		}
		return he == nil, nil
	}, func(ctx context.Context, cause error) error {
		if last == nil {
			last = &HealthError{Object: a.Objects[0], Reason: "not checked before the deadline"}
		}
		last.Err = cause
		last.Detail = c.explain(ctx, last)
		return last
	})
	if err == nil {
		c.log.InfoContext(ctx, "release healthy", "release", a.Namespace+"/"+a.Name, "revision", a.Revision,
			"took", time.Since(begin).Round(time.Millisecond))
	}
	return err
}

// unhealthy returns the first object of refs that is not healthy, or nil.
func (c *Conn) unhealthy(ctx context.Context, refs []ObjectRef) *HealthError {
	for _, ref := range refs {
		mapping, err := c.restMapping(ctx, ref.GroupVersionKind())
		if err != nil {
			return &HealthError{Object: ref, Reason: "kind not served: " + c.unreachable(err).Error()}
		}
		obj, err := c.resource(manifestObject{Ref: ref, Mapping: mapping}).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return &HealthError{Object: ref, Reason: "not found"}
		case err != nil:
			return &HealthError{Object: ref, Reason: "cannot read: " + c.unreachable(err).Error(), unread: true}
		}
		if ok, reason := health(obj); !ok {
			return &HealthError{Object: ref, Reason: reason}
		}
	}
	return nil
}

// health judges one live object.
func health(obj *unstructured.Unstructured) (ok bool, reason string) {
	if obj.GetDeletionTimestamp() != nil {
		return false, "being deleted"
	}
	gvk := obj.GroupVersionKind()
	switch {
	case gvk.Group == "apps" && gvk.Kind == "Deployment":
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
			return false, "unreadable: " + err.Error()
		}
		return deploymentHealth(&d)
	case gvk.Group == "apps" && gvk.Kind == "StatefulSet":
		var s appsv1.StatefulSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &s); err != nil {
			return false, "unreadable: " + err.Error()
		}
		return statefulSetHealth(&s)
	case gvk.Group == "apps" && gvk.Kind == "DaemonSet":
		var d appsv1.DaemonSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
			return false, "unreadable: " + err.Error()
		}
		return daemonSetHealth(&d)
	case gvk.Group == "" && gvk.Kind == "PersistentVolumeClaim":
		phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
		if phase == string(corev1.ClaimBound) {
			return true, ""
		}
		if phase == "" {
			phase = string(corev1.ClaimPending)
		}
		return false, phase
	}
	return true, ""
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func notObserved(generation, observed int64) string {
	return fmt.Sprintf("rollout not yet observed (generation %d, observed %d)", generation, observed)
}

func deploymentHealth(d *appsv1.Deployment) (bool, string) {
	want, st := replicas(d.Spec.Replicas), d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return false, notObserved(d.Generation, st.ObservedGeneration)
	case want == 0:
		return true, ""
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas available", st.AvailableReplicas, want)
	case st.ReadyReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas ready", st.ReadyReplicas, want)
	}
	return true, ""
}

func statefulSetHealth(s *appsv1.StatefulSet) (bool, string) {
	want, st := replicas(s.Spec.Replicas), s.Status
	switch {
	case st.ObservedGeneration < s.Generation:
		return false, notObserved(s.Generation, st.ObservedGeneration)
	case want == 0:
		return true, ""
	}
	if s.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType {
		var partition int32
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			partition = *ru.Partition
		}
		if st.UpdatedReplicas < want-partition {
			return false, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want-partition)
		}
		if partition == 0 && st.UpdateRevision != "" && st.CurrentRevision != st.UpdateRevision {
			return false, fmt.Sprintf("rolling update to revision %s in progress", st.UpdateRevision)
		}
	}
	switch {
	case st.ReadyReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas ready", st.ReadyReplicas, want)
	case st.AvailableReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas available", st.AvailableReplicas, want)
	}
	return true, ""
}

func daemonSetHealth(d *appsv1.DaemonSet) (bool, string) {
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return false, notObserved(d.Generation, st.ObservedGeneration)
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods available", st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return true, ""
}

// explain looks for the cluster's own account of why an object is not
// healthy: for a workload, a failure condition or a pod that cannot be
// scheduled or started; otherwise the object's latest warning event. It
// returns "" when it finds nothing.
func (c *Conn) explain(ctx context.Context, he *HealthError) string {
	ref := he.Object
	gvk := ref.GroupVersionKind()
	if gvk.Group == "apps" && slices.Contains([]string{"Deployment", "StatefulSet", "DaemonSet"}, gvk.Kind) {
		if s := c.explainWorkload(ctx, ref); s != "" {
			return s
		}
	}
	return c.lastWarning(ctx, ref)
}

// explainWorkload reports a workload's failure condition, else its first
// pod that is not ready with the reason.
func (c *Conn) explainWorkload(ctx context.Context, ref ObjectRef) string {
	mapping, err := c.restMapping(ctx, ref.GroupVersionKind())
	if err != nil {
		return ""
	}
	obj, err := c.resource(manifestObject{Ref: ref, Mapping: mapping}).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, x := range conds {
		cond, _ := x.(map[string]any)
		typ, status, msg := fmt.Sprint(cond["type"]), fmt.Sprint(cond["status"]), fmt.Sprint(cond["message"])
		if (typ == "ReplicaFailure" && status == "True") || (typ == "Progressing" && status == "False") {
			return fmt.Sprintf("%s: %s", cond["reason"], msg)
		}
	}
	sel, found, _ := unstructured.NestedMap(obj.Object, "spec", "selector")
	if !found {
		return ""
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err != nil {
		return ""
	}
	selector, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return ""
	}
	pods, err := c.clientset.CoreV1().Pods(ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return ""
	}
	for i := range pods.Items {
		if s := podProblem(&pods.Items[i]); s != "" {
			return "pod " + pods.Items[i].Name + ": " + s
		}
	}
	return ""
}

// podProblem says why a pod is not ready, or "" when it is or when the pod
// gives no reason.
func podProblem(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return ""
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return strings.TrimSpace(cond.Reason + ": " + cond.Message)
		}
	}
	for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, w.Message)
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("container %s: terminated: %s (exit code %d)", cs.Name, t.Reason, t.ExitCode)
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionFalse && cond.Message != "" {
			return strings.TrimSpace(cond.Reason + ": " + cond.Message)
		}
	}
	return ""
}

// lastWarning returns the latest Warning event of an object, as
// "Reason: message".
func (c *Conn) lastWarning(ctx context.Context, ref ObjectRef) string {
	sel := fields.Set{
		"involvedObject.kind": ref.Kind,
		"involvedObject.name": ref.Name,
		"type":                corev1.EventTypeWarning,
	}
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	events, err := c.clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil || len(events.Items) == 0 {
		return ""
	}
	latest := slices.MaxFunc(events.Items, func(a, b corev1.Event) int {
		return eventTime(a).Compare(eventTime(b))
	})
	return latest.Reason + ": " + latest.Message
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Uninstall removes a release and what it made, all within timeout:
//
//  1. The release is uninstalled with its hooks, as the namespace's
//     deployer (restored first when missing; see deployer.go). Nothing to do
//     when it does not exist, or when its namespace is gone or being
//     deleted (everything in it goes with it). A release without
//     mengi.cloud/managed=true is refused with *NotManagedError. Objects are
//     deleted in the foreground, so an object is gone only once its
//     dependents (a Deployment's ReplicaSets and Pods) are.
//  2. Uninstall waits until every object of the release's last manifest is
//     gone.
//  3. The namespace is deleted, with the Conn's own credentials, if it
//     carries mengi.cloud/managed=true (Apply created it) and holds no
//     other Helm release, and Uninstall waits for it to go: PVCs made from
//     a StatefulSet's volumeClaimTemplates, which Helm leaves, go with it.
//     This also happens when the release was already gone, so a retried
//     Uninstall finishes an interrupted one. A namespace Apply did not
//     create is kept; once no release is left in it, the deployer is
//     removed from it.
//
// Errors are *ReleaseError; one wraps a *StuckError naming the object or
// namespace still present when the timeout passed, and what holds it (a
// finalizer nobody removes), rather than hanging.
func (c *Conn) Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	unlockRelease, err := c.releases.acquire(ctx, namespace+"/"+name, true)
	if err != nil {
		return c.releaseErr("uninstall", namespace, name, err)
	}
	defer unlockRelease()
	if err := c.uninstall(ctx, name, namespace); err != nil {
		return c.releaseErr("uninstall", namespace, name, err)
	}
	if err := c.deleteNamespaceIfUnused(ctx, namespace); err != nil {
		return c.releaseErr("uninstall", namespace, name, err)
	}
	return nil
}

// uninstall is Uninstall's steps 1 and 2. It holds the namespace shared,
// so the namespace and its deployer stay while Helm works.
func (c *Conn) uninstall(ctx context.Context, name, namespace string) error {
	unlock, err := c.namespaces.acquire(ctx, namespace, false)
	if err != nil {
		return err
	}
	defer unlock()
	ns, err := c.clientset.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get namespace %s: %w", namespace, err)
	case ns.DeletionTimestamp != nil:
		return nil
	}
	if err := c.ensureDeployer(ctx, namespace); err != nil {
		return err
	}
	cfg, err := c.deployerConfig(ctx, namespace)
	if err != nil {
		return err
	}
	hist, err := history(cfg, name)
	if err != nil || len(hist) == 0 {
		return err
	}
	last := hist[len(hist)-1]
	if !isManaged(last) {
		return &NotManagedError{Namespace: namespace, Name: name}
	}
	return c.uninstallRelease(ctx, cfg, last)
}

// uninstallRelease runs Helm's uninstall of last's release and waits for
// its objects to go.
func (c *Conn) uninstallRelease(ctx context.Context, cfg *action.Configuration, last *release.Release) error {
	begin := time.Now()
	rel := last.Namespace + "/" + last.Name
	objs, err := c.manifestObjects(ctx, last.Manifest, last.Namespace)
	if err != nil {
		// A kind no longer served (its CRD removed) cannot have objects
		// left; Helm skips it too.
		c.log.WarnContext(ctx, "cannot list the release's objects; not waiting for them", "release", rel, "err", err)
		objs = nil
	}
	un := action.NewUninstall(cfg)
	un.Timeout, un.DeletionPropagation = hookTimeout(ctx), "foreground"
	if _, err := un.Run(last.Name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return err
	}
	if err := c.waitGone(ctx, objs); err != nil {
		return err
	}
	c.log.InfoContext(ctx, "uninstalled release", "release", rel,
		"objects", len(objs), "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// deleteNamespaceIfUnused deletes a namespace Apply created once no Helm
// release is left in it, and waits for it to go; from a namespace Apply did
// not create, it removes the deployer instead.
func (c *Conn) deleteNamespaceIfUnused(ctx context.Context, namespace string) error {
	unlock, err := c.namespaces.acquire(ctx, namespace, true)
	if err != nil {
		return err
	}
	defer unlock()
	api := c.clientset.CoreV1().Namespaces()
	ns, err := api.Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get namespace %s: %w", namespace, err)
	case ns.Labels[LabelManaged] != "true":
		if used, err := c.hasReleases(ctx, namespace); used || err != nil {
			return err
		}
		return c.removeDeployer(ctx, namespace)
	case ns.DeletionTimestamp == nil:
		if used, err := c.hasReleases(ctx, namespace); used || err != nil {
			return err
		}
		uid := ns.UID
		err = api.Delete(ctx, namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", namespace, err)
		}
	}
	if err := c.waitNamespaceGone(ctx, namespace, 0); err != nil {
		return err
	}
	c.log.InfoContext(ctx, "deleted namespace", "namespace", namespace)
	return nil
}

// hasReleases reports whether a Helm release is left in namespace (read
// with the Conn's own credentials).
func (c *Conn) hasReleases(ctx context.Context, namespace string) (bool, error) {
	cfg, err := c.actionConfig(ctx, namespace)
	if err != nil {
		return false, err
	}
	others, err := cfg.Releases.ListReleases()
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return false, fmt.Errorf("list releases in namespace %s: %w", namespace, err)
	}
	if len(others) > 0 {
		c.log.InfoContext(ctx, "keeping namespace: other releases remain", "namespace", namespace, "release", others[0].Name)
	}
	return len(others) > 0, nil
}

// waitGone polls until none of objs exists, or ctx ends (*StuckError).
func (c *Conn) waitGone(ctx context.Context, objs []manifestObject) error {
	remaining := objs
	return c.poll(ctx, func(ctx context.Context) (bool, error) {
		var still []manifestObject
		for _, o := range remaining {
			_, err := c.resource(o).Get(ctx, o.Ref.Name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				still = append(still, o)
			}
		}
		remaining = still
		return len(remaining) == 0, nil
	}, func(ctx context.Context, cause error) error {
		o := remaining[0]
		reason := "not deleted"
		if live, err := c.resource(o).Get(ctx, o.Ref.Name, metav1.GetOptions{}); err == nil {
			reason = deletionState(live)
		}
		if len(remaining) > 1 {
			reason += fmt.Sprintf(" (and %d more objects)", len(remaining)-1)
		}
		return &StuckError{Object: o.Ref, Reason: reason, Err: cause}
	})
}

// waitNamespaceGone polls until the namespace no longer exists, within
// limit when positive, else until ctx ends (*StuckError, which names the
// namespace's conditions, such as finalizers remaining on its content).
func (c *Conn) waitNamespaceGone(ctx context.Context, name string, limit time.Duration) error {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	api := c.clientset.CoreV1().Namespaces()
	var last *corev1.Namespace
	return c.poll(ctx, func(ctx context.Context) (bool, error) {
		ns, err := api.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			last = ns
		}
		return false, nil
	}, func(_ context.Context, cause error) error {
		reason := "not deleted"
		if last != nil {
			reason = namespaceState(last)
		}
		return &StuckError{Object: ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: name}, Reason: reason, Err: cause}
	})
}

// poll calls check every PollInterval until it reports done or fails, or ctx
// ends; then it returns stuck's error, built with a short context of its
// own and the reason ctx ended.
func (c *Conn) poll(ctx context.Context, check func(context.Context) (bool, error),
	stuck func(context.Context, error) error) error {
	ticker := time.NewTicker(c.opts.PollInterval)
	defer ticker.Stop()
	for {
		done, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), explainTimeout)
			defer cancel()
			return stuck(ectx, ctx.Err())
		case <-ticker.C:
		}
	}
}

// deletionState describes why an object is still there.
func deletionState(obj metav1.Object) string {
	if obj.GetDeletionTimestamp() == nil {
		return "not being deleted"
	}
	if f := obj.GetFinalizers(); len(f) > 0 {
		return "terminating, finalizers " + strings.Join(f, ", ")
	}
	return "terminating"
}

// namespaceState describes a namespace that does not go away: its phase
// and the conditions the namespace controller reports.
func namespaceState(ns *corev1.Namespace) string {
	var parts []string
	for _, cond := range ns.Status.Conditions {
		if cond.Status == corev1.ConditionTrue {
			parts = append(parts, fmt.Sprintf("%s: %s", cond.Reason, cond.Message))
		}
	}
	state := string(ns.Status.Phase)
	if state == "" {
		state = deletionState(ns)
	}
	if len(parts) == 0 {
		return state
	}
	return state + ": " + strings.Join(parts, "; ")
}

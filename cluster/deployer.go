package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/action"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	psa "k8s.io/pod-security-admission/api"
)

// Helm runs as a deployer: a ServiceAccount of the release's namespace,
// bound there to a ClusterRole, impersonated by the Conn. Release records
// live in the namespace, where the release's own workloads may write them,
// so whatever Helm does from them (install, upgrade, rollback, uninstall,
// history) is done with no more rights than the namespace grants: the API
// server refuses cluster-scoped objects and other namespaces whatever the
// chart or a changed record says.
const (
	// DeployerName names the ServiceAccount and its RoleBinding in every
	// release namespace.
	DeployerName = "mengi-deployer"
	// DeployerClusterRole is the ClusterRole the RoleBinding grants in the
	// namespace: Kubernetes' built-in "admin", every namespaced kind
	// (custom ones through its aggregation), Secrets for Helm's release
	// records and Roles within the namespace, nothing cluster-scoped.
	DeployerClusterRole = "admin"
)

// deployerUser is the user name Helm runs as in namespace.
func deployerUser(namespace string) string {
	return "system:serviceaccount:" + namespace + ":" + DeployerName
}

// bindTimeout bounds the wait for a new RoleBinding to take effect.
const bindTimeout = 30 * time.Second

// deployerConfig returns the Helm configuration of namespace (as
// actionConfig) whose requests impersonate the namespace's deployer.
func (c *Conn) deployerConfig(ctx context.Context, namespace string) (*action.Configuration, error) {
	return c.helmConfig(ctx, namespace, c.deployerREST(ctx, namespace))
}

// deployerREST returns a client configuration (as boundConfig) that
// impersonates the namespace's deployer.
func (c *Conn) deployerREST(ctx context.Context, namespace string) *rest.Config {
	rc := c.boundConfig(ctx)
	rc.Impersonate = rest.ImpersonationConfig{UserName: deployerUser(namespace)}
	return rc
}

// ensureDeployer makes the deployer's ServiceAccount and RoleBinding in
// namespace, or restores them when changed.
func (c *Conn) ensureDeployer(ctx context.Context, namespace string) error {
	if err := c.ensureServiceAccount(ctx, namespace); err != nil {
		return err
	}
	return c.ensureRoleBinding(ctx, namespace)
}

func (c *Conn) ensureServiceAccount(ctx context.Context, namespace string) error {
	api := c.clientset.CoreV1().ServiceAccounts(namespace)
	_, err := api.Get(ctx, DeployerName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		if err != nil {
			return fmt.Errorf("get service account %s/%s: %w", namespace, DeployerName, err)
		}
		return nil
	}
	automount := false
	sa := &corev1.ServiceAccount{ObjectMeta: deployerMeta(), AutomountServiceAccountToken: &automount}
	if _, err := api.Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service account %s/%s: %w", namespace, DeployerName, err)
	}
	return nil
}

func (c *Conn) ensureRoleBinding(ctx context.Context, namespace string) error {
	api := c.clientset.RbacV1().RoleBindings(namespace)
	want := &rbacv1.RoleBinding{
		ObjectMeta: deployerMeta(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: DeployerClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: DeployerName, Namespace: namespace}},
	}
	have, err := api.Get(ctx, DeployerName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get role binding %s/%s: %w", namespace, DeployerName, err)
	case have.RoleRef == want.RoleRef && slices.Equal(have.Subjects, want.Subjects):
		return nil
	default: // changed: a RoleBinding's roleRef cannot be updated, replace it
		uid := have.UID
		err := api.Delete(ctx, DeployerName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace role binding %s/%s: %w", namespace, DeployerName, err)
		}
		c.log.WarnContext(ctx, "restored the deployer's changed role binding", "namespace", namespace)
	}
	if _, err := api.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role binding %s/%s: %w", namespace, DeployerName, err)
	}
	return c.waitBound(ctx, namespace)
}

// waitBound waits, within bindTimeout, until the API server's authorizer
// grants the deployer its role: RBAC sees a new RoleBinding a moment after
// it is stored. It asks as the deployer (a SelfSubjectAccessReview, which
// any user may make) whether it may list Secrets, as Helm does first.
func (c *Conn) waitBound(ctx context.Context, namespace string) error {
	cs, err := kubernetes.NewForConfig(c.deployerREST(ctx, namespace))
	if err != nil {
		return fmt.Errorf("deployer client: %w", err)
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "list", Resource: "secrets"}}}
	ctx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	return c.poll(ctx, func(ctx context.Context) (bool, error) {
		res, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, fmt.Errorf("review the deployer's access in namespace %s: %w", namespace, err)
		}
		return res.Status.Allowed, nil
	}, func(_ context.Context, cause error) error {
		return fmt.Errorf("the deployer of namespace %s was not granted role %s in time: %w", namespace, DeployerClusterRole, cause)
	})
}

// removeDeployer deletes the deployer's RoleBinding and ServiceAccount.
func (c *Conn) removeDeployer(ctx context.Context, namespace string) error {
	err := c.clientset.RbacV1().RoleBindings(namespace).Delete(ctx, DeployerName, metav1.DeleteOptions{})
	if err == nil || apierrors.IsNotFound(err) {
		err = c.clientset.CoreV1().ServiceAccounts(namespace).Delete(ctx, DeployerName, metav1.DeleteOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the deployer of namespace %s: %w", namespace, err)
	}
	return nil
}

func deployerMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: DeployerName, Labels: map[string]string{LabelManaged: "true"}}
}

// labelPodSecurity sets the namespace's Pod Security Admission enforce
// level when it differs.
func (c *Conn) labelPodSecurity(ctx context.Context, ns *corev1.Namespace, level psa.Level) error {
	if ns.Labels[psa.EnforceLevelLabel] == string(level) {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, psa.EnforceLevelLabel, level)
	_, err := c.clientset.CoreV1().Namespaces().Patch(ctx, ns.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("label namespace %s %s=%s: %w", ns.Name, psa.EnforceLevelLabel, level, err)
	}
	c.log.InfoContext(ctx, "set the namespace's pod security level", "namespace", ns.Name, "level", level)
	return nil
}

package devcluster_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/devcluster"
	"github.com/mengi-cloud/gitops/devcluster/clustertest"
)

const fieldManager = "gitops-agent"

// TestServerSideApply applies a small application with server-side apply
// and waits for the Deployment to be Available and the PVC Bound.
func TestServerSideApply(t *testing.T) {
	t.Parallel()
	cs := kubernetes.NewForConfigOrDie(clustertest.RESTConfig(t))
	ns := newNamespace(t, cs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	applyWebApp(ctx, t, cs, ns)
	waitPVCBound(ctx, t, cs, ns, "web-data")
	waitDeploymentAvailable(ctx, t, cs, ns, "web", 2)
	t.Logf("applied to Available in %s", time.Since(begin).Round(time.Millisecond))

	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	check(t, "list pods", err)
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" || p.Status.PodIP == "" {
			t.Errorf("pod %s: phase %s on node %q with IP %q; want Running on a kwok node with an IP",
				p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
		}
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "web-data", metav1.GetOptions{})
	check(t, "get PVC", err)
	if sc := pvc.Spec.StorageClassName; sc == nil || *sc == "" {
		t.Errorf("PVC has no storage class; want the default (%q in the local cluster)", devcluster.StorageClass)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	check(t, "get ConfigMap", err)
	if !managedBy(cm.ManagedFields, fieldManager) {
		t.Errorf("ConfigMap managed fields %v lack manager %q", cm.ManagedFields, fieldManager)
	}

	// A second apply with a change is a patch, not a conflict.
	_, err = cs.CoreV1().ConfigMaps(ns).Apply(ctx, corev1ac.ConfigMap("web-config", ns).
		WithData(map[string]string{"GREETING": "hi"}), metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	check(t, "re-apply ConfigMap", err)
}

// applyWebApp applies a ConfigMap, a Secret, a PVC, a Deployment with 2
// replicas mounting them, a Service and an Ingress with server-side apply.
func applyWebApp(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	labels := map[string]string{"app": "web"}
	_, err := cs.CoreV1().ConfigMaps(ns).Apply(ctx,
		corev1ac.ConfigMap("web-config", ns).WithData(map[string]string{"GREETING": "hello"}), opts)
	check(t, "ConfigMap", err)
	_, err = cs.CoreV1().Secrets(ns).Apply(ctx,
		corev1ac.Secret("web-secret", ns).WithStringData(map[string]string{"TOKEN": "s3cret"}), opts)
	check(t, "Secret", err)
	_, err = cs.CoreV1().PersistentVolumeClaims(ns).Apply(ctx, corev1ac.PersistentVolumeClaim("web-data", ns).
		WithSpec(corev1ac.PersistentVolumeClaimSpec().
			WithAccessModes(corev1.ReadWriteOnce).
			WithResources(corev1ac.VolumeResourceRequirements().
				WithRequests(corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}))), opts)
	check(t, "PersistentVolumeClaim", err)
	container := corev1ac.Container().WithName("web").WithImage("nginx:1.27").
		WithPorts(corev1ac.ContainerPort().WithContainerPort(80)).
		WithEnvFrom(
			corev1ac.EnvFromSource().WithConfigMapRef(corev1ac.ConfigMapEnvSource().WithName("web-config")),
			corev1ac.EnvFromSource().WithSecretRef(corev1ac.SecretEnvSource().WithName("web-secret"))).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("data").WithMountPath("/data"))
	_, err = cs.AppsV1().Deployments(ns).Apply(ctx, appsv1ac.Deployment("web", ns).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(2).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).
				WithSpec(corev1ac.PodSpec().WithContainers(container).
					WithVolumes(corev1ac.Volume().WithName("data").
						WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName("web-data")))))), opts)
	check(t, "Deployment", err)
	_, err = cs.CoreV1().Services(ns).Apply(ctx, corev1ac.Service("web", ns).
		WithSpec(corev1ac.ServiceSpec().WithSelector(labels).
			WithPorts(corev1ac.ServicePort().WithPort(80).WithTargetPort(intstr.FromInt32(80)))), opts)
	check(t, "Service", err)
	_, err = cs.NetworkingV1().Ingresses(ns).Apply(ctx, networkingv1ac.Ingress("web", ns).
		WithSpec(networkingv1ac.IngressSpec().WithRules(networkingv1ac.IngressRule().WithHost("web.example.test").
			WithHTTP(networkingv1ac.HTTPIngressRuleValue().WithPaths(networkingv1ac.HTTPIngressPath().
				WithPath("/").WithPathType(networkingv1.PathTypePrefix).
				WithBackend(networkingv1ac.IngressBackend().WithService(networkingv1ac.IngressServiceBackend().
					WithName("web").WithPort(networkingv1ac.ServiceBackendPort().WithNumber(80)))))))), opts)
	check(t, "Ingress", err)
}

func check(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func managedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	for _, f := range fields {
		if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func waitPVCBound(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	var phase corev1.PersistentVolumeClaimPhase
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = pvc.Status.Phase
		return phase == corev1.ClaimBound, nil
	})
	if err != nil {
		t.Fatalf("PVC %s/%s not Bound (phase %q): %v", ns, name, phase, err)
	}
}

func waitDeploymentAvailable(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	var last appsv1.DeploymentStatus
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = d.Status
		if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas != replicas ||
			d.Status.UpdatedReplicas != replicas {
			return false, nil
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("Deployment %s/%s not Available with %d replicas (status %+v): %v", ns, name, replicas, last, err)
	}
}

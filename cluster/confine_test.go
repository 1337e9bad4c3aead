package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mengi-cloud/gitops/cluster"
	"github.com/mengi-cloud/gitops/render"
	mschema "github.com/mengi-cloud/gitops/schema"
)

// chartOf builds a chart of files: "templates/..." are templates, the rest
// (such as "crds/...") plain files.
func chartOf(files map[string]string) *chart.Chart {
	ch := &chart.Chart{Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "tenant", Version: "0.1.0"}}
	for name, data := range files {
		f := &chart.File{Name: name, Data: []byte(data)}
		if strings.HasPrefix(name, "templates/") {
			ch.Templates = append(ch.Templates, f)
		} else {
			ch.Files = append(ch.Files, f)
		}
	}
	return ch
}

// Templates of the tests: {{ .Release.Namespace }} makes the names of
// cluster-scoped objects unique to a test.
const (
	tmplCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{{ .Release.Namespace }}.example.com
spec:
  group: {{ .Release.Namespace }}.example.com
  names: {kind: Gadget, plural: gadgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`
	tmplNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: pwn-{{ .Release.Namespace }}
`
	tmplClusterAdmin = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pwn-{{ .Release.Namespace }}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: default, namespace: {{ .Release.Namespace }}}
`
	tmplKubeSystem = `apiVersion: v1
kind: ConfigMap
metadata:
  name: pwn-{{ .Release.Namespace }}
  namespace: kube-system
data: {owned: "yes"}
`
	tmplClusterRoleHook = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pwn-{{ .Release.Namespace }}
  annotations: {helm.sh/hook: pre-install}
rules:
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
`
	tmplPrivilegedPod = `apiVersion: v1
kind: Pod
metadata:
  name: root
spec:
  containers:
    - name: c
      image: busybox:1.36
      securityContext: {privileged: true}
`
)

// containers is the end of a pod spec: one container.
const containers = "containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, infinity]\n"

// workload is a template of kind whose pod spec (a Pod's spec, else the
// pod template's) is pod.
func workload(apiVersion, kind, name, pod string) string {
	var spec string
	switch kind {
	case "Pod":
		spec = pod
	case "Job":
		spec = "template:\n  spec:\n" + indent("restartPolicy: Never\n"+pod, "    ")
	case "CronJob":
		spec = "schedule: \"0 0 1 1 *\"\njobTemplate:\n  spec:\n    template:\n      spec:\n" +
			indent("restartPolicy: Never\n"+pod, "        ")
	default: // Deployment, ReplicaSet, DaemonSet, StatefulSet
		if kind == "StatefulSet" {
			spec = "serviceName: " + name + "\n"
		}
		spec += "selector: {matchLabels: {app: " + name + "}}\ntemplate:\n  metadata: {labels: {app: " + name + "}}\n  spec:\n" +
			indent(pod, "    ")
	}
	return "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\nspec:\n" + indent(spec, "  ")
}

func indent(text, prefix string) string {
	lines := strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}

// absent fails the test unless get reports NotFound.
func absent(t *testing.T, what string, get func() error) {
	t.Helper()
	if err := get(); !apierrors.IsNotFound(err) {
		t.Errorf("%s: %v; want it not found", what, err)
	}
}

// TestConfinedChartAttack: a user's chart that tries to take the cluster
// (a CRD, a Namespace, a ClusterRoleBinding of cluster-admin, a ConfigMap
// in kube-system, a privileged hostNetwork Deployment in another tenant's
// namespace, a ClusterRole as a pre-install hook) is refused as a whole,
// naming every object, and nothing of it exists afterwards: not even the
// release's namespace or a Helm release record.
func TestConfinedChartAttack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns, victim := namespaceName(t, c), namespaceName(t, c)
	createNamespace(t, c, victim)
	miner := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: miner
  namespace: ` + victim + `
spec:
  selector: {matchLabels: {app: miner}}
  template:
    metadata: {labels: {app: miner}}
    spec:
      hostNetwork: true
      containers:
        - name: c
          image: busybox:1.36
          securityContext: {privileged: true}
`
	ch := chartOf(map[string]string{
		"templates/crd.yaml": tmplCRD, "templates/namespace.yaml": tmplNamespace,
		"templates/admin.yaml": tmplClusterAdmin, "templates/kube-system.yaml": tmplKubeSystem,
		"templates/victim.yaml": miner, "templates/hook.yaml": tmplClusterRoleHook,
	})

	_, err := c.Apply(ctx, cluster.Release{Name: "pwn", Namespace: ns, Chart: ch})
	t.Logf("Apply: %v", err)
	var pe *cluster.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("Apply = %v (%T); want a *PolicyError", err, err)
	}
	want := []string{
		"CustomResourceDefinition gadgets." + ns + ".example.com (cluster-scoped)",
		"Namespace pwn-" + ns + " (cluster-scoped)",
		"ClusterRoleBinding pwn-" + ns + " (cluster-scoped)",
		"ConfigMap kube-system/pwn-" + ns + " (another namespace)",
		"Deployment " + victim + "/miner (another namespace; host namespaces: hostNetwork=true; privileged: container",
		"ClusterRole pwn-" + ns + " (hook; cluster-scoped)",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not name %q", w)
		}
	}
	if len(pe.Violations) != len(want) || pe.Namespace != ns {
		t.Errorf("PolicyError %+v; want %d violations in namespace %s", pe, len(want), ns)
	}

	cs := c.Clientset()
	crds := c.Dynamic().Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	absent(t, "the CRD", func() error { _, err := crds.Get(ctx, "gadgets."+ns+".example.com", metav1.GetOptions{}); return err })
	absent(t, "the Namespace", func() error { _, err := cs.CoreV1().Namespaces().Get(ctx, "pwn-"+ns, metav1.GetOptions{}); return err })
	absent(t, "the ClusterRoleBinding", func() error {
		_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "pwn-"+ns, metav1.GetOptions{})
		return err
	})
	absent(t, "the hook's ClusterRole", func() error {
		_, err := cs.RbacV1().ClusterRoles().Get(ctx, "pwn-"+ns, metav1.GetOptions{})
		return err
	})
	absent(t, "the ConfigMap in kube-system", func() error {
		_, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "pwn-"+ns, metav1.GetOptions{})
		return err
	})
	absent(t, "the Deployment in the other tenant's namespace", func() error {
		_, err := cs.AppsV1().Deployments(victim).Get(ctx, "miner", metav1.GetOptions{})
		return err
	})
	absent(t, "the release's namespace", func() error { _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); return err })
	secrets, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=pwn"})
	if err != nil || len(secrets.Items) != 0 {
		t.Errorf("Helm release records: %d, %v; want none", len(secrets.Items), err)
	}
}

// TestConfinedChartRules: each rule alone, with and without a cluster that
// allows privileged workloads. Objects outside the namespace are always
// refused; pod rules only where privileged workloads are not allowed.
func TestConfinedChartRules(t *testing.T) {
	t.Parallel()
	c := connect(t)
	cases := []struct {
		name  string
		files map[string]string
		pod   bool   // a Pod Security rule: allowed when the cluster allows privileged
		want  string // the violation, "NS" standing for the release's namespace
	}{
		{name: "cluster-scoped kind", files: map[string]string{"templates/x.yaml": tmplClusterAdmin},
			want: "ClusterRoleBinding pwn-NS (cluster-scoped)"},
		{name: "custom kind the cluster does not serve", files: map[string]string{"templates/x.yaml": "apiVersion: NS.example.com/v1\nkind: Gadget\nmetadata: {name: g}\n"},
			want: "Gadget g (kind not served by the cluster)"},
		{name: "crds folder", files: map[string]string{"crds/gadgets.yaml": strings.ReplaceAll(tmplCRD, "{{ .Release.Namespace }}", "crds")},
			want: "CustomResourceDefinition gadgets.crds.example.com (crds/; cluster-scoped)"},
		{name: "another namespace", files: map[string]string{"templates/x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: default}\n"},
			want: "ConfigMap default/cm (another namespace)"},
		{name: "hook in another namespace", files: map[string]string{"templates/x.yaml": "apiVersion: v1\nkind: ConfigMap\n" +
			"metadata: {name: hook, namespace: default, annotations: {helm.sh/hook: pre-install}}\n"},
			want: "ConfigMap default/hook (hook; another namespace)"},
		{name: "privileged container", pod: true, files: map[string]string{"templates/x.yaml": tmplPrivilegedPod},
			want: `Pod NS/root (privileged: container "c" must not set securityContext.privileged=true)`},
		{name: "hostNetwork", pod: true, files: map[string]string{"templates/x.yaml": workload("apps/v1", "Deployment", "d", "hostNetwork: true\n"+containers)},
			want: "Deployment NS/d (host namespaces: hostNetwork=true)"},
		{name: "hostPID", pod: true, files: map[string]string{"templates/x.yaml": workload("batch/v1", "CronJob", "cj", "hostPID: true\n"+containers)},
			want: "CronJob NS/cj (host namespaces: hostPID=true)"},
		{name: "hostIPC", pod: true, files: map[string]string{"templates/x.yaml": workload("apps/v1", "ReplicaSet", "rs", "hostIPC: true\n"+containers)},
			want: "ReplicaSet NS/rs (host namespaces: hostIPC=true)"},
		{name: "hostPath", pod: true, files: map[string]string{"templates/x.yaml": workload("apps/v1", "DaemonSet", "ds",
			"volumes: [{name: root, hostPath: {path: /}}]\n"+containers)},
			want: `DaemonSet NS/ds (hostPath volumes: volume "root")`},
		{name: "hostPort", pod: true, files: map[string]string{"templates/x.yaml": workload("apps/v1", "StatefulSet", "ss",
			containers+"    ports: [{containerPort: 80, hostPort: 8080}]\n")},
			want: `StatefulSet NS/ss (hostPort: container "c" uses hostPort 8080)`},
		{name: "privileged hook Job", pod: true, files: map[string]string{"templates/x.yaml": strings.Replace(
			workload("batch/v1", "Job", "setup", "hostNetwork: true\n"+containers), "metadata:\n", "metadata:\n  annotations: {helm.sh/hook: pre-install}\n", 1)},
			want: "Job NS/setup (hook; host namespaces: hostNetwork=true)"},
	}
	for _, tc := range cases {
		for _, allow := range []bool{false, true} {
			name := tc.name
			if allow {
				name += " if privileged allowed"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx := testContext(t, 3*time.Minute)
				ns := namespaceName(t, c)
				_, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: ns, Chart: chartOf(tc.files), AllowPrivileged: allow})
				if allow && tc.pod {
					if err != nil {
						t.Fatalf("Apply on a cluster that allows privileged workloads: %v", err)
					}
					nsObj, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
					if err != nil || nsObj.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
						t.Errorf("namespace labels %v, %v; want pod-security.kubernetes.io/enforce=privileged", nsObj.GetLabels(), err)
					}
					return
				}
				var pe *cluster.PolicyError
				if !errors.As(err, &pe) || len(pe.Violations) != 1 {
					t.Fatalf("Apply = %v; want a *PolicyError with one violation", err)
				}
				if got, want := pe.Violations[0].String(), strings.ReplaceAll(tc.want, "NS", ns); got != want {
					t.Errorf("violation\n got  %s\n want %s", got, want)
				}
				absent(t, "the release's namespace", func() error {
					_, err := c.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
					return err
				})
			})
		}
	}
}

// TestDeployerEnforced: with Apply's own check turned off, the API server
// alone refuses what a release may not create, because Helm runs as the
// namespace's deployer (RBAC: admin in its namespace only) in a namespace
// that enforces Pod Security "baseline".
func TestDeployerEnforced(t *testing.T) {
	t.Parallel()
	c := connect(t)
	c.Unconfined()
	cases := []struct {
		name, file string
		want       string // in the error
		allow      bool
		gone       func(ctx context.Context, ns string) error // nil: the object exists
	}{
		{name: "ClusterRoleBinding", file: tmplClusterAdmin, want: "forbidden", gone: func(ctx context.Context, ns string) error {
			_, err := c.Clientset().RbacV1().ClusterRoleBindings().Get(ctx, "pwn-"+ns, metav1.GetOptions{})
			return err
		}},
		{name: "ClusterRole as a hook", file: tmplClusterRoleHook, want: "forbidden", gone: func(ctx context.Context, ns string) error {
			_, err := c.Clientset().RbacV1().ClusterRoles().Get(ctx, "pwn-"+ns, metav1.GetOptions{})
			return err
		}},
		{name: "ConfigMap in kube-system", file: tmplKubeSystem, want: "forbidden", gone: func(ctx context.Context, ns string) error {
			_, err := c.Clientset().CoreV1().ConfigMaps("kube-system").Get(ctx, "pwn-"+ns, metav1.GetOptions{})
			return err
		}},
		{name: "privileged Pod", file: tmplPrivilegedPod, want: `violates PodSecurity "baseline:latest": privileged`,
			gone: func(ctx context.Context, ns string) error {
				_, err := c.Clientset().CoreV1().Pods(ns).Get(ctx, "root", metav1.GetOptions{})
				return err
			}},
		{name: "privileged Pod if privileged allowed", file: tmplPrivilegedPod, allow: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 3*time.Minute)
			ns := namespaceName(t, c)
			ch := chartOf(map[string]string{"templates/x.yaml": tc.file})
			_, err := c.Apply(ctx, cluster.Release{Name: "app", Namespace: ns, Chart: ch, AllowPrivileged: tc.allow})
			t.Logf("Apply: %v", err)
			if tc.gone == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if _, err := c.Clientset().CoreV1().Pods(ns).Get(ctx, "root", metav1.GetOptions{}); err != nil {
					t.Errorf("the privileged Pod: %v", err)
				}
				return
			}
			var pe *cluster.PolicyError
			if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v; want the API server's refusal, %q", err, tc.want)
			}
			if tc.want == "forbidden" && !strings.Contains(err.Error(), "system:serviceaccount:"+ns+":"+cluster.DeployerName) {
				t.Errorf("the refusal does not name the deployer %s", cluster.DeployerName)
			}
			absent(t, tc.name, func() error { return tc.gone(ctx, ns) })
		})
	}
}

// TestDeployerSetUp: Apply gives the namespace its deployer and Pod
// Security label, restores a deployer's RoleBinding changed by hand, and
// Uninstall takes them out of a namespace Apply did not create.
func TestDeployerSetUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := connect(t)
	ns := namespaceName(t, c)
	createNamespace(t, c, ns)
	r := cluster.Release{Name: "app", Namespace: ns, Chart: loadChart(t), Values: map[string]any{"worker": map[string]any{"enabled": false}}}
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cs := c.Clientset()
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
		t.Errorf("namespace labels %v, %v; want pod-security.kubernetes.io/enforce=baseline", nsObj.GetLabels(), err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, cluster.DeployerName, metav1.GetOptions{}); err != nil {
		t.Errorf("the deployer's ServiceAccount: %v", err)
	}
	rb, err := cs.RbacV1().RoleBindings(ns).Get(ctx, cluster.DeployerName, metav1.GetOptions{})
	if err != nil || rb.RoleRef.Name != cluster.DeployerClusterRole || len(rb.Subjects) != 1 || rb.Subjects[0].Name != cluster.DeployerName {
		t.Fatalf("the deployer's RoleBinding: %+v, %v", rb, err)
	}

	// A workload of the release widens its own binding to another subject:
	// the next Apply restores it.
	rb.Subjects = append(rb.Subjects, rb.Subjects[0])
	rb.Subjects[1].Name = "default"
	if _, err := cs.RbacV1().RoleBindings(ns).Update(ctx, rb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if rb, err := cs.RbacV1().RoleBindings(ns).Get(ctx, cluster.DeployerName, metav1.GetOptions{}); err != nil || len(rb.Subjects) != 1 {
		t.Errorf("the deployer's RoleBinding after Apply: %+v, %v; want it restored", rb, err)
	}

	if err := c.Uninstall(ctx, "app", ns, time.Minute); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	absent(t, "the deployer's RoleBinding", func() error {
		_, err := cs.RbacV1().RoleBindings(ns).Get(ctx, cluster.DeployerName, metav1.GetOptions{})
		return err
	})
	absent(t, "the deployer's ServiceAccount", func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, cluster.DeployerName, metav1.GetOptions{})
		return err
	})
}

// TestBuiltinChartConfined: every Docker example, rendered with the
// built-in chart, passes the check and becomes healthy.
func TestBuiltinChartConfined(t *testing.T) {
	t.Parallel()
	c := connect(t)
	r, err := render.New(render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []string{"web_app", "api", "database", "static_site", "container"} {
		t.Run(ex, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 3*time.Minute)
			data, err := os.ReadFile(filepath.Join("..", "examples", ex+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			d, errs := mschema.ParseFile(data)
			if len(errs) > 0 {
				t.Fatalf("examples/%s.yaml: %v", ex, errs)
			}
			rel, err := r.Render(ctx, d, &mschema.Cluster{Domain: "apps.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			ns := namespaceName(t, c)
			applyAndWait(t, ctx, c, cluster.Release{Name: rel.Name, Namespace: ns, Chart: rel.Chart, Values: rel.Values,
				ObjectLabels: map[string]string{deploymentIDLabel: d.Metadata.ID}})
		})
	}
}

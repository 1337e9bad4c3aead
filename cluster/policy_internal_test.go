package cluster

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// object reads one object from YAML.
func object(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPodSecurityViolations: the pod of every kind that makes one is
// found (a Pod, a PodTemplate, spec.template of any kind, a CronJob's
// jobTemplate) and held to Pod Security "baseline".
func TestPodSecurityViolations(t *testing.T) {
	ev, err := newPodSecurity()
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{podSecurity: ev}
	const container = `{containers: [{name: c, image: busybox}]}`
	cases := []struct {
		name, yaml string
		want       []string // reasons (before ":")
	}{
		{"plain Deployment", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d},
			spec: {template: {spec: ` + container + `}}}`, nil},
		{"ConfigMap", `{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {template: x}}`, nil},
		{"privileged Deployment", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d},
			spec: {template: {spec: {containers: [{name: c, image: busybox, securityContext: {privileged: true}}]}}}}`,
			[]string{"privileged"}},
		{"hostNetwork Pod", `{apiVersion: v1, kind: Pod, metadata: {name: p},
			spec: {hostNetwork: true, containers: [{name: c, image: busybox}]}}`, []string{"host namespaces"}},
		{"hostPID CronJob", `{apiVersion: batch/v1, kind: CronJob, metadata: {name: j},
			spec: {schedule: "* * * * *", jobTemplate: {spec: {template: {spec: {hostPID: true, containers: [{name: c, image: busybox}]}}}}}}`,
			[]string{"host namespaces"}},
		{"hostIPC PodTemplate", `{apiVersion: v1, kind: PodTemplate, metadata: {name: t},
			template: {spec: {hostIPC: true, containers: [{name: c, image: busybox}]}}}`, []string{"host namespaces"}},
		{"hostPath in a custom kind", `{apiVersion: example.com/v1, kind: Runner, metadata: {name: r},
			spec: {template: {spec: {containers: [{name: c, image: busybox}], volumes: [{name: h, hostPath: {path: /}}]}}}}`,
			[]string{"hostPath volumes"}},
		{"hostPort and privileged init container", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: d},
			spec: {template: {spec: {initContainers: [{name: i, image: busybox, securityContext: {privileged: true}}],
			containers: [{name: c, image: busybox, ports: [{containerPort: 80, hostPort: 80}]}]}}}}`,
			[]string{"hostPort", "privileged"}},
		{"unreadable template", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d},
			spec: {template: {spec: {hostNetwork: "yes", containers: []}}}}`, []string{"pod template not readable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := c.podSecurityViolations(object(t, tc.yaml))
			var reasons []string
			for _, g := range got {
				reason, _, _ := strings.Cut(g, ":")
				reasons = append(reasons, reason)
			}
			if !slices.Equal(reasons, tc.want) {
				t.Errorf("violations %q; want reasons %q", got, tc.want)
			}
		})
	}
}

func TestPolicyErrorMessage(t *testing.T) {
	crb := Violation{Object: ObjectRef{Kind: "ClusterRoleBinding", Name: "pwn"}, Placement: "cluster-scoped"}
	if got, want := (&PolicyError{Namespace: "mengi-shop", Violations: []Violation{crb}}).Error(),
		"ClusterRoleBinding pwn (cluster-scoped) is not allowed: a deployment may only create objects in its namespace mengi-shop"; got != want {
		t.Errorf("one violation:\n got  %s\n want %s", got, want)
	}
	job := Violation{Object: ObjectRef{Kind: "Job", Namespace: "mengi-shop", Name: "setup"}, Source: "hook",
		PodSecurity: []string{"host namespaces: hostNetwork=true"}}
	cm := Violation{Object: ObjectRef{Kind: "ConfigMap", Namespace: "kube-system", Name: "x"}, Placement: "another namespace"}
	got := (&PolicyError{Namespace: "mengi-shop", Violations: []Violation{crb, cm, job}}).Error()
	want := "ClusterRoleBinding pwn (cluster-scoped), ConfigMap kube-system/x (another namespace) and " +
		"Job mengi-shop/setup (hook; host namespaces: hostNetwork=true) are not allowed: " +
		"a deployment may only create objects in its namespace mengi-shop; " +
		`its pods must meet Pod Security "baseline" (not privileged, no host namespaces, hostPath volumes or hostPorts) ` +
		"unless its cluster allows privileged workloads"
	if got != want {
		t.Errorf("three violations:\n got  %s\n want %s", got, want)
	}
}

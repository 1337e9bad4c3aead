package schema

import (
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestSpecDigest(t *testing.T) {
	a := dockerSpec(t)
	d := a.Digest()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{32}$`).MatchString(d) {
		t.Errorf("digest %q", d)
	}
	for range 20 {
		if a.Digest() != d {
			t.Fatal("digest changes between calls")
		}
	}
	// Equal content, built differently: the same digest.
	b := a
	b.Replicas = ptr(*a.Replicas)
	b.Config = map[string]any{"ingress": true, "health_check_path": "/h"}
	c := a
	c.Config = map[string]any{"health_check_path": "/h", "ingress": true}
	if b.Digest() != c.Digest() {
		t.Error("map order changes the digest")
	}
	e1, e2 := a, a
	e1.Volumes, e2.Volumes = nil, []Volume{}
	if e1.Digest() != e2.Digest() {
		t.Error("nil and empty lists should have the same digest")
	}
	// Any change of content changes it.
	for name, mod := range map[string]func(*Spec){
		"replicas":    func(s *Spec) { s.Replicas = ptr[int64](3) },
		"unset":       func(s *Spec) { s.Replicas = nil },
		"name":        func(s *Spec) { s.Name = "other" },
		"env value":   func(s *Spec) { s.EnvironmentVariables = []EnvironmentVariable{{Name: "A", Value: ptr("2")}} },
		"volume size": func(s *Spec) { s.Volumes = []Volume{{Path: "/cache", SizeGb: 11}} },
		"config":      func(s *Spec) { s.Config = map[string]any{"ingress": false} },
	} {
		m := a
		mod(&m)
		if m.Digest() == d {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	// A known value pins the encoding: changing it marks every deployment
	// as changed (pending) until the agent applies it again.
	pinned := Spec{ClusterID: testClusterID, Name: "web", AppType: AppHelm, DeploymentType: TypeDocker, DockerImage: ptr("nginx")}
	if got := pinned.Digest(); got != "sha256:"+digestOfMinimal {
		t.Errorf("digest of the minimal spec = %s", got)
	}
}

const digestOfMinimal = "9bf48e5b46756276c29dd2b67d8aaade"

func TestDeploymentPhase(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	base := func() *Deployment { return testDeployment(dockerSpec(t)) }
	cases := []struct {
		name string
		mod  func(d *Deployment)
		want Phase
	}{
		{"no status", func(d *Deployment) {}, PhasePending},
		{"empty phase", func(d *Deployment) { d.Status = &Status{} }, PhasePending},
		{"running, digest matches", func(d *Deployment) { d.Status = &Status{Phase: PhaseRunning, SpecDigest: d.Spec.Digest()} }, PhaseRunning},
		{"running, no digest", func(d *Deployment) { d.Status = &Status{Phase: PhaseRunning} }, PhaseRunning},
		{"running, spec changed since", func(d *Deployment) {
			d.Status = &Status{Phase: PhaseRunning, SpecDigest: d.Spec.Digest()}
			d.Spec.Replicas = ptr[int64](5)
		}, PhasePending},
		{"failed", func(d *Deployment) { d.Status = &Status{Phase: PhaseFailed, SpecDigest: d.Spec.Digest()} }, PhaseFailed},
		{"error", func(d *Deployment) { d.Status = &Status{Phase: PhaseError} }, PhaseError},
		{"stopped", func(d *Deployment) {
			d.Spec.Replicas = ptr[int64](0)
			d.Status = &Status{Phase: PhaseStopped, SpecDigest: d.Spec.Digest()}
		}, PhaseStopped},
		{"deletion requested", func(d *Deployment) {
			d.Metadata.DeletionRequestedAt = &now
			d.Status = &Status{Phase: PhaseRunning, SpecDigest: d.Spec.Digest()}
		}, PhaseDeleting},
		{"deletion requested, no status", func(d *Deployment) { d.Metadata.DeletionRequestedAt = &now }, PhaseDeleting},
		{"deletion requested, spec changed", func(d *Deployment) {
			d.Metadata.DeletionRequestedAt = &now
			d.Status = &Status{Phase: PhaseRunning, SpecDigest: "sha256:old"}
		}, PhaseDeleting},
		{"promoting", func(d *Deployment) { d.Status = &Status{Phase: PhasePromoting, SpecDigest: d.Spec.Digest()} }, PhasePromoting},
	}
	for _, c := range cases {
		d := base()
		c.mod(d)
		if got := d.Phase(); got != c.want {
			t.Errorf("%s: Phase() = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSpecFields(t *testing.T) {
	f := SpecFields()
	if f[0] != "cluster_id" || f[1] != "name" || len(f) != 22 {
		t.Errorf("SpecFields() = %q", f)
	}
	f[0] = "changed"
	if SpecFields()[0] != "cluster_id" {
		t.Error("SpecFields returns its own slice")
	}
	// Every field of DeploymentCreate is a spec field, and the reverse.
	for _, k := range []string{"cluster_id", "name", "app_type", "config", "cpu_request", "memory_request_mb", "replicas",
		"container_port", "environment_variables", "storage_size_gb", "volumes", "run_as_uid", "docker_image",
		"deployment_type", "helm_repo_url", "helm_chart_name", "helm_chart_version", "custom_values_yaml",
		"image_update_strategy", "image_update_constraint", "image_allow_tags", "image_ignore_tags"} {
		if !slices.Contains(SpecFields(), k) {
			t.Errorf("spec lacks %q", k)
		}
	}
}

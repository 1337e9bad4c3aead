package render_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

// TestEnvInSecret: plain environment values are a Secret <name>-env (no
// ConfigMap), read whole by the container; secret_ref stays a
// secretKeyRef.
func TestEnvInSecret(t *testing.T) {
	d := readDeployment(t, "../examples/web_app.yaml")
	rel, err := newRenderer(t, render.Options{}).Render(testContext(t), d, &schema.Cluster{Domain: testDomain})
	if err != nil {
		t.Fatal(err)
	}
	text, err := render.Manifests(testContext(t), rel, "")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						EnvFrom []map[string]map[string]string `json:"envFrom"`
						Env     []map[string]any               `json:"env"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	var secret, workload *object
	for _, doc := range strings.Split(text, "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		switch o.Kind {
		case "ConfigMap":
			t.Errorf("a ConfigMap %s: environment values belong in a Secret", o.Metadata.Name)
		case "Secret":
			secret = &o
		case "Deployment":
			workload = &o
		}
	}
	if secret == nil || secret.Metadata.Name != "blog-env" || secret.Type != "Opaque" {
		t.Fatalf("Secret blog-env: %+v", secret)
	}
	want := map[string]string{}
	for _, ev := range d.Spec.EnvironmentVariables {
		if ev.Value != nil {
			want[ev.Name] = *ev.Value
		}
	}
	if len(secret.Data) != len(want) {
		t.Errorf("the Secret has %d keys; want %d (%v)", len(secret.Data), len(want), want)
	}
	for name, value := range want {
		got, err := base64.StdEncoding.DecodeString(secret.Data[name])
		if err != nil || string(got) != value {
			t.Errorf("%s: %q (%v); want %q", name, got, err, value)
		}
	}
	c := workload.Spec.Template.Spec.Containers[0]
	if len(c.EnvFrom) != 1 || c.EnvFrom[0]["secretRef"]["name"] != "blog-env" {
		t.Errorf("envFrom %v; want the Secret blog-env", c.EnvFrom)
	}
	if len(c.Env) != 1 || c.Env[0]["valueFrom"].(map[string]any)["secretKeyRef"] == nil {
		t.Errorf("env %v; want the secret_ref as a secretKeyRef", c.Env)
	}
}

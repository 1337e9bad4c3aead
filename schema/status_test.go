package schema

import (
	"strings"
	"testing"
	"time"
)

const engineerFile = `# Shop front end. Owner: team-shop (ask in #shop before scaling down).
apiVersion: mengi.cloud/v1
kind: Deployment
metadata:
  id: 0193a8a0-0000-7000-8000-000000000001
  user_id: 0193a8a0-0000-7000-8000-000000000002
  created_at: "2026-11-26T12:00:00Z"
  updated_at: "2026-11-26T12:00:00Z"
spec:
  cluster_id: 0193a8a0-0000-7000-8000-000000000003
  name: shop
  app_type: web_app   # public
  deployment_type: docker
  docker_image: "ghcr.io/acme/shop:1.4.2"
  replicas: 3 # black friday
  environment_variables:
  - name: LOG_LEVEL
    value: debug
`

func TestSetStatusKeepsEverythingElse(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 1, 0, 0, time.UTC)
	st := &Status{Phase: PhaseRunning, EndpointURL: "https://shop.apps.example.com", ValuesYAML: "image: x\nreplicas: 3\n",
		AppliedCommit: strings.Repeat("ab", 20), AppliedAt: &at}
	out, err := SetStatus([]byte(engineerFile), st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), engineerFile) {
		t.Fatalf("the engineer's part changed:\n%s", out)
	}
	wantTail := `status:
  phase: running
  endpoint_url: https://shop.apps.example.com
  values_yaml: |
    image: x
    replicas: 3
  applied_commit: abababababababababababababababababababab
  applied_at: "2026-11-26T12:01:00Z"
`
	if got := strings.TrimPrefix(string(out), engineerFile); got != wantTail {
		t.Fatalf("status block:\n%s\nwant:\n%s", got, wantTail)
	}

	// Replacing it again keeps the rest and swaps only the block, even when
	// something follows it.
	withTrailer := string(out) + "# end of file\n"
	out2, err := SetStatus([]byte(withTrailer), &Status{Phase: PhaseFailed, Reason: "HealthCheckFailed", ErrorMessage: "Deployment/shop: 0 of 3 replicas available"})
	if err != nil {
		t.Fatal(err)
	}
	want := engineerFile + "status:\n  phase: failed\n  reason: HealthCheckFailed\n  error_message: 'Deployment/shop: 0 of 3 replicas available'\n# end of file\n"
	if string(out2) != want {
		t.Fatalf("second edit:\n%s\nwant:\n%s", out2, want)
	}
	d, errs := ParseFile(out2)
	if errs != nil || d.Status.Phase != PhaseFailed || *d.Spec.Replicas != 3 {
		t.Fatalf("parse after edit: %+v %v", d, errs)
	}

	// nil removes the block.
	out3, err := SetStatus(out2, nil)
	if err != nil || string(out3) != engineerFile+"# end of file\n" {
		t.Fatalf("remove: %v\n%s", err, out3)
	}
}

func TestSetStatusRefusesWhatIsNotAMapping(t *testing.T) {
	for _, data := range []string{"- a\n- b\n", "key: [unclosed\n", "just text\n"} {
		if _, err := SetStatus([]byte(data), &Status{Phase: PhaseRunning}); err == nil {
			t.Errorf("%q was edited", data)
		}
	}
}

func TestSetStatusOnInvalidSpec(t *testing.T) {
	bad := strings.Replace(engineerFile, "replicas: 3 # black friday", "replicas: three # black friday", 1)
	out, err := SetStatus([]byte(bad), &Status{Phase: PhaseError, Reason: "InvalidSpec", ErrorMessage: "line 15: spec.replicas: Input should be a valid integer"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), bad) {
		t.Fatalf("the engineer's part changed:\n%s", out)
	}
	st, err := ReadStatus(out)
	if err != nil || st.Phase != PhaseError || st.Reason != "InvalidSpec" {
		t.Fatalf("ReadStatus = %+v, %v", st, err)
	}
	if st, err := ReadStatus([]byte(bad)); st != nil || err != nil {
		t.Fatalf("ReadStatus without a block = %+v, %v", st, err)
	}
}

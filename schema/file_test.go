package schema

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fileFixtures are the deployments of the golden files, by file name.
func fileFixtures() map[string]*Deployment {
	applied := time.Date(2025, 1, 3, 4, 6, 0, 0, time.UTC)
	dockerFull := testDeployment(Spec{
		ClusterID: testClusterID, Name: "shop-api", AppType: AppAPI, DeploymentType: TypeDocker,
		DockerImage: ptr("ghcr.io/shop/api:v1.2.3"), Replicas: ptr[int64](2), CPURequest: ptr(0.25),
		MemoryRequestMB: ptr[int64](256), ContainerPort: ptr[int64](8080), RunAsUID: ptr[int64](1000),
		StorageSizeGB: ptr[int64](5),
		Volumes:       []Volume{{Path: "/cache", SizeGb: 2, Purpose: ptr("cache")}, {Path: "/uploads", SizeGb: 10}},
		EnvironmentVariables: []EnvironmentVariable{{Name: "LOG_LEVEL", Value: ptr("info")},
			{Name: "DB_PASSWORD", SecretRef: ptr("shop-db/password")}, {Name: "FEATURE_X", Value: ptr("yes")}},
		Config: map[string]any{"health_check_path": "/healthz", "ingress": true, "command": []any{"/bin/shop"},
			"args": []any{"--port", "8080"}, "storage_mount_path": "/var/lib/shop"},
		ImageUpdateStrategy: ptr("semver"), ImageUpdateConstraint: ptr("~1.2"),
	})
	dockerFull.Spec.Digest()
	dockerFull.Status = &Status{Phase: PhaseRunning, EndpointURL: "https://shop-api.apps.example.com",
		ValuesYAML: "replicaCount: 2\nimage:\n  repository: ghcr.io/shop/api\n  tag: v1.2.3\n",
		SpecDigest: dockerFull.Spec.Digest(), AppliedCommit: strings.Repeat("ab", 20), AppliedAt: &applied, UpdatedAt: &applied}

	helmDep := testDeployment(Spec{
		ClusterID: testClusterID, Name: "grafana", AppType: AppHelm, DeploymentType: TypeHelm,
		HelmRepoURL: ptr("https://grafana.github.io/helm-charts"), HelmChartName: ptr("grafana"), HelmChartVersion: ptr("8.5.1"),
		CustomValuesYAML: ptr("persistence:\n  enabled: true\n  size: 5Gi\nadminUser: admin\n"),
	})
	deleting := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	helmDep.Metadata.DeletionRequestedAt = &deleting
	helmDep.Status = &Status{Phase: PhaseFailed, Reason: "HelmInstallFailed",
		ErrorMessage: "helm install grafana: timed out waiting for the condition"}

	minimal := testDeployment(Spec{ClusterID: testClusterID, Name: "web", AppType: AppHelm, DeploymentType: TypeDocker,
		DockerImage: ptr("nginx")})

	// Strings that YAML would read as something else, or that need a style.
	tricky := testDeployment(Spec{ClusterID: testClusterID, Name: "tricky", AppType: AppContainer, DeploymentType: TypeDocker,
		DockerImage: ptr("busybox:1.36"),
		EnvironmentVariables: []EnvironmentVariable{
			{Name: "Y", Value: ptr("y")}, {Name: "YES", Value: ptr("Yes")}, {Name: "N", Value: ptr("n")}, {Name: "NO", Value: ptr("NO")},
			{Name: "ON", Value: ptr("on")}, {Name: "OFF", Value: ptr("Off")}, {Name: "TRUE", Value: ptr("true")},
			{Name: "NULL", Value: ptr("null")}, {Name: "TILDE", Value: ptr("~")}, {Name: "INT", Value: ptr("8080")},
			{Name: "OCTAL", Value: ptr("0755")}, {Name: "HEX", Value: ptr("0x1F")}, {Name: "FLOAT", Value: ptr("1.5")},
			{Name: "EXP", Value: ptr("1e3")}, {Name: "INF", Value: ptr(".inf")}, {Name: "TIME", Value: ptr("2025-01-02T03:04:05Z")},
			{Name: "DATE", Value: ptr("2025-01-02")}, {Name: "EMPTY", Value: ptr("")}, {Name: "SPACE", Value: ptr(" ")},
			{Name: "COLON", Value: ptr("a: b")}, {Name: "HASH", Value: ptr("a #b")}, {Name: "DASH", Value: ptr("- x")},
			{Name: "QUOTE", Value: ptr(`"q" 'q'`)}, {Name: "MERGE", Value: ptr("<<")}, {Name: "STAR", Value: ptr("*x")},
			{Name: "UNICODE", Value: ptr("héllo ✓")}, {Name: "HTML", Value: ptr("<a href=\"x\">&amp;</a>")},
			{Name: "SCRIPT", Value: ptr("#!/bin/sh\nset -e\necho \"hi\"\n")},
			{Name: "NO_TRAILING_NEWLINE", Value: ptr("line 1\nline 2")},
			{Name: "TRAILING_NEWLINES", Value: ptr("a\n\n\n")},
			{Name: "INDENTED", Value: ptr("a\n  b\n    c\n")},
			{Name: "LEADING_SPACE", Value: ptr("  indented\nsecond\n")},
			{Name: "LEADING_NEWLINE", Value: ptr("\nafter\n")},
			{Name: "TRAILING_SPACE", Value: ptr("a \nb\n")},
			{Name: "CRLF", Value: ptr("a\r\nb\r\n")},
			{Name: "TAB", Value: ptr("a\tb\nc\n")},
			{Name: "CONTROL", Value: ptr("bell\a")},
			// Left raw by encoding/json; YAML refuses or folds them raw.
			{Name: "DEL", Value: ptr("\x7f")}, {Name: "C1", Value: ptr("\u0088")}, {Name: "NEL", Value: ptr("a\u0085b")},
			{Name: "LS", Value: ptr("a\u2028b")}, {Name: "PS", Value: ptr("a\u2029b\n")}, {Name: "NONCHAR", Value: ptr("\uffff")},
			{Name: "BOM", Value: ptr("\ufeffx")},
		},
	})
	return map[string]*Deployment{"docker-full": dockerFull, "helm": helmDep, "minimal": minimal, "tricky": tricky}
}

func TestEncodeFileGolden(t *testing.T) {
	for name, d := range fileFixtures() {
		t.Run(name, func(t *testing.T) {
			got, err := EncodeFile(d)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./schema -run TestEncodeFileGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeFile differs from %s (rerun with -update if intended):\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func TestEncodeFileRoundTrip(t *testing.T) {
	for name, d := range fileFixtures() {
		t.Run(name, func(t *testing.T) {
			data, err := EncodeFile(d)
			if err != nil {
				t.Fatal(err)
			}
			back, errs := ParseFile(data)
			if errs != nil {
				t.Fatalf("ParseFile of EncodeFile:\n%s\n%s", dumpErrs(errs), data)
			}
			if !reflect.DeepEqual(back, d) {
				t.Errorf("round trip:\n got  %s\n want %s", jsonString(back), jsonString(d))
			}
			if back.Spec.Digest() != d.Spec.Digest() {
				t.Errorf("digest changed in the round trip")
			}
			again, err := EncodeFile(back)
			if err != nil || !bytes.Equal(again, data) {
				t.Errorf("re-encoding differs (%v):\n%s", err, lineDiff(string(data), string(again)))
			}
		})
	}
}

func TestEncodeFileDeterministic(t *testing.T) {
	d := fileFixtures()["docker-full"]
	first, err := EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		// A config map built in another order gives the same bytes.
		c := map[string]any{}
		keys := []string{"args", "command", "health_check_path", "ingress", "storage_mount_path"}
		for j := range keys {
			k := keys[(i+j)%len(keys)]
			c[k] = d.Spec.Config[k]
		}
		d2 := *d
		d2.Spec.Config = c
		got, err := EncodeFile(&d2)
		if err != nil || !bytes.Equal(got, first) {
			t.Fatalf("run %d differs (%v):\n%s", i, err, lineDiff(string(first), string(got)))
		}
	}
}

func TestEncodeFileLayout(t *testing.T) {
	data, err := EncodeFile(fileFixtures()["docker-full"])
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "# Mengi GitOps deployment.") {
		t.Errorf("no header:\n%s", text)
	}
	// Top-level keys in their fixed order; spec keys in the API's order.
	order := []string{"\napiVersion: ", "\nkind: ", "\nmetadata:\n", "\nspec:\n", "\nstatus:\n"}
	last := -1
	for _, k := range order {
		i := strings.Index(text, k)
		if i < 0 || i < last {
			t.Errorf("key %q missing or out of order", k)
		}
		last = i
	}
	last = -1
	for _, f := range SpecFields() {
		i := strings.Index(text, "\n  "+f+":")
		if i < 0 {
			continue
		}
		if i < last {
			t.Errorf("spec key %q out of order", f)
		}
		last = i
	}
	for _, want := range []string{
		"\n  values_yaml: |\n    replicaCount: 2\n",  // literal block
		"\n      value: \"yes\"\n",                   // YAML 1.1 boolean quoted
		"\n    - path: /cache\n      sizeGb: 2\n",    // two-space indentation
		"\n  created_at: \"2025-01-02T03:04:05Z\"\n", // timestamps as strings
		"\n  cpu_request: 0.25\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("file lacks %q:\n%s", want, text)
		}
	}
	// Unset fields are left out, not written as null.
	if strings.Contains(text, "null") || strings.Contains(text, "helm_") {
		t.Errorf("unset fields written:\n%s", text)
	}
}

func TestEncodeFileStringStyles(t *testing.T) {
	data, err := EncodeFile(fileFixtures()["tricky"])
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		`value: "y"`, `value: "Yes"`, `value: "n"`, `value: "NO"`, `value: "on"`, `value: "Off"`,
		`value: "true"`, `value: "null"`, `value: "~"`, `value: "8080"`, `value: "0755"`, `value: "0x1F"`,
		`value: "1.5"`, `value: "1e3"`, `value: ".inf"`, `value: "2025-01-02T03:04:05Z"`, `value: "2025-01-02"`,
		`value: ""`,
		"value: |\n        #!/bin/sh\n        set -e\n",
		"value: |-\n        line 1\n        line 2\n",
		"value: |+\n        a\n",
		"value: |\n        a\n          b\n            c\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("file lacks %q", want)
		}
	}
	// Strings a literal block cannot hold exactly are quoted instead.
	for _, name := range []string{"LEADING_SPACE", "LEADING_NEWLINE", "TRAILING_SPACE", "CRLF", "TAB", "CONTROL", "DEL", "C1", "NEL", "LS", "PS", "NONCHAR"} {
		i := strings.Index(text, "name: "+name+"\n")
		if i < 0 {
			t.Fatalf("no %s", name)
		}
		line := strings.SplitN(text[i:], "\n", 3)[1]
		if !strings.HasPrefix(strings.TrimSpace(line), `value: "`) {
			t.Errorf("%s: %q, want a double-quoted value", name, line)
		}
	}
}

func TestEncodeFileEmptyCollections(t *testing.T) {
	d := fileFixtures()["minimal"]
	d.Spec.Config = map[string]any{}
	d.Spec.Volumes = []Volume{}
	d.Spec.EnvironmentVariables = []EnvironmentVariable{}
	data, err := EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	golden, _ := os.ReadFile("testdata/minimal.golden")
	if !bytes.Equal(data, golden) {
		t.Errorf("empty collections should be left out like unset ones:\n%s", lineDiff(string(golden), string(data)))
	}
}

package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamples checks the files of examples/: each is a valid deployment
// file in the form the API writes, there is one per app_type, named after
// it, and the README lists each.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	readme, err := os.ReadFile("../examples/README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[AppType]bool{}
	for _, f := range files {
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, errs := ParseFile(data)
			if errs != nil {
				for _, e := range errs {
					t.Errorf("%s:%d: %s: %s", base, e.Line, e.Field(), e.Msg)
				}
				return
			}
			if want := AppType(strings.TrimSuffix(base, ".yaml")); d.Spec.AppType != want {
				t.Errorf("app_type %q in %s", d.Spec.AppType, base)
			}
			seen[d.Spec.AppType] = true
			if canon, err := EncodeFile(d); err != nil || !bytes.Equal(canon, data) {
				t.Errorf("not in the form EncodeFile writes (%v):\n%s", err, lineDiff(string(canon), string(data)))
			}
			if d.Spec.DeploymentType == TypeDocker && (d.Spec.RunAsUID == nil || d.Spec.CPURequest == nil || d.Spec.MemoryRequestMB == nil) {
				t.Errorf("a Docker example should show run_as_uid, cpu_request and memory_request_mb")
			}
			if !bytes.Contains(readme, []byte("("+base+")")) {
				t.Errorf("examples/README.md does not list %s", base)
			}
		})
	}
	for _, at := range []AppType{AppWebApp, AppAPI, AppDatabase, AppStaticSite, AppContainer, AppHelm} {
		if !seen[at] {
			t.Errorf("no example for app_type %s", at)
		}
	}
}

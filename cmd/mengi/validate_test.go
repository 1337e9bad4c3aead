package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// runValidate runs `mengi validate args...` in process and returns what it
// printed, its exit code and the message it exits with.
func runValidate(t *testing.T, args ...string) (stdout, stderr string, code int, msg string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name:           "mengi",
		Commands:       []*cli.Command{validateCommand()},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {}, // keep the test process alive
	}
	err := app.Run(append([]string{"mengi", "validate"}, args...))
	if err != nil {
		var ec cli.ExitCoder
		if !errors.As(err, &ec) {
			t.Fatalf("validate %v: %v", args, err)
		}
		code, msg = ec.ExitCode(), err.Error()
	}
	return out.String(), errOut.String(), code, msg
}

const (
	validateRepo    = "testdata/validate/repo"
	validateCluster = validateRepo + "/clusters/6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d"
)

func outputLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestValidateFiles(t *testing.T) {
	brokenLines := []string{
		validateCluster + "/broken.yaml:13: spec.replicas: Input should be greater than or equal to 0",
		validateCluster + "/broken.yaml:15: spec.volumes[0].path: String should be an absolute path without spaces",
		validateCluster + "/broken.yaml:17: spec.environment_variables[0]: Value error, set exactly one of value or secret_ref",
	}
	cases := []struct {
		name     string
		args     []string
		stdout   []string
		code     int
		msg      string
		stderrIn string
	}{
		{name: "valid file", args: []string{validateCluster + "/blog.yaml"}},
		{name: "valid file, verbose", args: []string{"--verbose", validateCluster + "/blog.yaml"},
			stdout: []string{validateCluster + "/blog.yaml: ok"}},
		{name: "short flag", args: []string{"-v", validateRepo + "/apps/mengi.yml"},
			stdout: []string{validateRepo + "/apps/mengi.yml: ok"}},
		{name: "invalid file", args: []string{validateCluster + "/broken.yaml"}, stdout: brokenLines,
			code: 1, msg: "mengi validate: 3 problems in 1 file of 1"},
		{name: "valid and invalid", args: []string{"-v", validateCluster + "/blog.yaml", validateCluster + "/broken.yaml"},
			stdout: append([]string{validateCluster + "/blog.yaml: ok"}, brokenLines...),
			code:   1, msg: "mengi validate: 3 problems in 1 file of 2"},
		{name: "syntax error", args: []string{validateCluster + "/syntax.yaml"},
			stdout: []string{validateCluster + "/syntax.yaml:4: YAML error: found a tab character that violates indentation"},
			code:   1, msg: "mengi validate: 1 problem in 1 file of 1"},
		// A file named on the command line is checked whatever it holds.
		{name: "named non-deployment", args: []string{validateRepo + "/apps/other.yaml"}, code: 1,
			stdout: []string{
				validateRepo + "/apps/other.yaml:1: apiVersion: Input should be 'mengi.cloud/v1'",
				validateRepo + "/apps/other.yaml:2: kind: Input should be 'Deployment'",
				validateRepo + "/apps/other.yaml:3: metadata.id: Field required",
				validateRepo + "/apps/other.yaml:3: metadata.user_id: Field required",
				validateRepo + "/apps/other.yaml:3: metadata.created_at: Field required",
				validateRepo + "/apps/other.yaml:3: metadata.updated_at: Field required",
				validateRepo + "/apps/other.yaml:4: metadata.name: Extra inputs are not permitted",
				validateRepo + "/apps/other.yaml:1: spec: Field required",
			},
			msg: "mengi validate: 8 problems in 1 file of 1"},
		{name: "missing file", args: []string{"testdata/validate/nope.yaml"}, code: 2,
			msg: "mengi validate: 1 path could not be read", stderrIn: "nope.yaml: no such file or directory"},
		// Unreadable wins over invalid.
		{name: "missing and invalid", args: []string{"testdata/validate/nope.yaml", validateCluster + "/broken.yaml"}, code: 2,
			stdout: brokenLines, msg: "mengi validate: 1 path could not be read", stderrIn: "nope.yaml"},
		{name: "no arguments", code: 2, msg: "mengi validate: name at least one deployment file or directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code, msg := runValidate(t, c.args...)
			if got := outputLines(out); !slices.Equal(got, c.stdout) {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, strings.Join(c.stdout, "\n"))
			}
			if code != c.code || msg != c.msg {
				t.Errorf("exit %d %q, want %d %q", code, msg, c.code, c.msg)
			}
			if c.stderrIn == "" && errOut != "" || !strings.Contains(errOut, c.stderrIn) {
				t.Errorf("stderr %q, want it to contain %q", errOut, c.stderrIn)
			}
		})
	}
}

// TestValidateDirectory walks a repository: deployment files under
// clusters/<id>/ and kind: Deployment files elsewhere are checked; cluster
// and user records, Kubernetes manifests, other kinds, non-YAML files and
// hidden folders are not.
func TestValidateDirectory(t *testing.T) {
	out, errOut, code, msg := runValidate(t, "--verbose", validateRepo)
	want := []string{
		validateRepo + "/apps/mengi.yml: ok",
		validateCluster + "/blog.yaml: ok",
		validateCluster + "/broken.yaml:13: spec.replicas: Input should be greater than or equal to 0",
		validateCluster + "/broken.yaml:15: spec.volumes[0].path: String should be an absolute path without spaces",
		validateCluster + "/broken.yaml:17: spec.environment_variables[0]: Value error, set exactly one of value or secret_ref",
		validateCluster + "/syntax.yaml:4: YAML error: found a tab character that violates indentation",
	}
	if got := outputLines(out); !slices.Equal(got, want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if code != 1 || msg != "mengi validate: 4 problems in 2 files of 4" || errOut != "" {
		t.Errorf("exit %d %q, stderr %q", code, msg, errOut)
	}

	// The same tree from inside clusters/, and one cluster's folder.
	out, _, code, _ = runValidate(t, validateRepo+"/clusters")
	if len(outputLines(out)) != 4 || code != 1 {
		t.Errorf("clusters/: exit %d\n%s", code, out)
	}
	out, _, code, _ = runValidate(t, "-v", validateRepo+"/apps")
	if got := outputLines(out); !slices.Equal(got, []string{validateRepo + "/apps/mengi.yml: ok"}) || code != 0 {
		t.Errorf("apps/: exit %d\n%s", code, out)
	}
}

// TestValidateRefusesLinksAndLargeFiles: a symbolic link (dangling, or to
// a file elsewhere) is reported, never followed, whether found in a
// directory or named; so is a file over 4 MiB, which is never read.
func TestValidateRefusesLinksAndLargeFiles(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "clusters", "6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(secret, []byte("kind: Deployment\npassword: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"gone.yaml": filepath.Join(dir, "gone.yaml"), "web.yaml": secret} {
		if err := os.Symlink(target, filepath.Join(folder, name)); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(folder, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), 500_000), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code, msg := runValidate(t, dir)
	want := []string{
		big + ": the file is 5000000 bytes; a deployment file holds at most 4194304 (4 MiB)",
		filepath.Join(folder, "gone.yaml") + ": a symbolic link: deployment files are regular files, and links are not followed",
		filepath.Join(folder, "web.yaml") + ": a symbolic link: deployment files are regular files, and links are not followed",
	}
	if got := outputLines(out); !slices.Equal(got, want) || code != 1 || msg != "mengi validate: 3 problems in 3 files of 3" || errOut != "" {
		t.Errorf("exit %d %q, stderr %q\nstdout:\n%s\nwant:\n%s", code, msg, errOut, out, strings.Join(want, "\n"))
	}
	if strings.Contains(out+errOut, "hunter2") || strings.Contains(out+errOut, "password") {
		t.Errorf("the link's target was read:\n%s%s", out, errOut)
	}
	out, _, code, _ = runValidate(t, filepath.Join(folder, "web.yaml"))
	if code != 1 || !strings.Contains(out, "a symbolic link") {
		t.Errorf("a link named on the command line: exit %d\n%s", code, out)
	}
}

// TestValidateCrossChecks: what the store and the agent check beyond one
// file's schema: the path against the spec, one file per metadata.id, and
// with --registry, the cluster and the owner.
func TestValidateCrossChecks(t *testing.T) {
	ctx := t.Context()
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry"), gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, ada, err := reg.AddKey(ctx, "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	open, err := reg.AddCluster(ctx, registry.ClusterSpec{Name: "open"})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := reg.AddCluster(ctx, registry.ClusterSpec{Name: "closed", Users: []string{"bob@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	regDir := reg.Dir()
	reg.Close()

	example, err := os.ReadFile("../../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := 0
	write := func(clusterID, file, name, user string) string {
		t.Helper()
		n++
		d, errs := schema.ParseFile(example)
		if errs != nil {
			t.Fatal(errs)
		}
		d.Metadata.ID = fmt.Sprintf("01a21a25-4c3c-7695-80a2-%012d", n)
		d.Metadata.UserID, d.Spec.ClusterID, d.Spec.Name = user, clusterID, name
		data, err := schema.EncodeFile(d)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "clusters", clusterID, file+".yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write(open.ID, "web", "web", ada.ID)
	misplaced := write(open.ID, "misplaced", "other", ada.ID)
	stranger := write(open.ID, "stranger", "stranger", "01a21a25-0000-7000-8000-000000000000")
	denied := write(closed.ID, "denied", "denied", ada.ID)
	unknown := write("6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d", "lost", "lost", ada.ID)
	copied := write(open.ID, "copy", "copy", ada.ID)
	data, _ := os.ReadFile(copied)
	os.WriteFile(copied, bytes.Replace(data, []byte("-000000000006"), []byte("-000000000001"), 1), 0o644)

	out, _, code, _ := runValidate(t, dir)
	without := []string{
		misplaced + ":12: spec.name: spec.cluster_id and spec.name say the file should be at clusters/" + open.ID + "/other.yaml",
		good + ":6: metadata.id: metadata.id 01a21a25-4c3c-7695-80a2-000000000001 is already used by " + copied, // copy.yaml comes first
	}
	if got := outputLines(out); !slices.Equal(got, without) || code != 1 {
		t.Errorf("without a registry: exit %d\n%s\nwant:\n%s", code, out, strings.Join(without, "\n"))
	}
	out, _, code, msg := runValidate(t, "--registry", regDir, dir)
	with := append(slices.Clone(without),
		denied+":11: spec.cluster_id: user ada@example.com may not deploy to cluster closed (an operator grants access with `mengi clusters users`)",
		unknown+":11: spec.cluster_id: cluster 6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d is not registered",
		stranger+":7: metadata.user_id: user 01a21a25-0000-7000-8000-000000000000 is not registered",
	)
	slices.Sort(with)
	got := outputLines(out)
	slices.Sort(got)
	if !slices.Equal(got, with) || code != 1 || msg != "mengi validate: 5 problems in 5 files of 6" {
		t.Errorf("with the registry: exit %d %q\n%s\nwant:\n%s", code, msg, out, strings.Join(with, "\n"))
	}
	if _, _, code, msg := runValidate(t, "--registry", filepath.Join(dir, "nowhere"), dir); code != 2 || !strings.Contains(msg, "not a registry repository") {
		t.Errorf("a registry that does not exist: exit %d %q", code, msg)
	}
}

func TestValidateExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) < 6 {
		t.Fatalf("examples: %v", files)
	}
	out, errOut, code, msg := runValidate(t, "-v", "../../examples")
	var want []string
	for _, f := range files {
		want = append(want, f+": ok")
	}
	if got := outputLines(out); !slices.Equal(got, want) || code != 0 || errOut != "" {
		t.Errorf("exit %d %q\nstdout:\n%s\nstderr:\n%s", code, msg, out, errOut)
	}
}

func TestProblemLine(t *testing.T) {
	cases := []struct {
		e    schema.FieldError
		want string
	}{
		{schema.FieldError{Loc: []any{"spec", "volumes", 0, "path"}, Msg: "m", Line: 7}, "f.yaml:7: spec.volumes[0].path: m"},
		{schema.FieldError{Msg: "YAML error: x", Line: 3}, "f.yaml:3: YAML error: x"},
		{schema.FieldError{Loc: []any{}, Msg: "m", Line: 1}, "f.yaml:1: m"},
		{schema.FieldError{Msg: "YAML error: control characters are not allowed"}, "f.yaml: YAML error: control characters are not allowed"},
		{schema.FieldError{Loc: []any{"kind"}, Msg: "m"}, "f.yaml: kind: m"},
	}
	for _, c := range cases {
		if got := problemLine("f.yaml", c.e); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestIsDeploymentKind(t *testing.T) {
	cases := []struct {
		data string
		want bool
	}{
		{"apiVersion: mengi.cloud/v1\nkind: Deployment\n", true},
		{"kind: Deployment\n", true},
		{"kind: \"Deployment\" # a comment\n", true},
		{"# header\nkind: Deployment\nspec:\n\tbroken: [\n", true},
		{"apiVersion: apps/v1\nkind: Deployment\n", false},
		{"apiVersion: mengi.cloud/v1\nkind: Cluster\n", false},
		{"spec:\n  kind: Deployment\n", false},
		{"", false},
	}
	for _, c := range cases {
		if got := isDeploymentKind([]byte(c.data)); got != c.want {
			t.Errorf("isDeploymentKind(%q) = %v", c.data, got)
		}
	}
}

func TestValidateIsACommand(t *testing.T) {
	for _, c := range newApp().Commands {
		if c.Name == "validate" {
			return
		}
	}
	t.Error("mengi has no validate command")
}

// TestValidateRepoCredentials: a helm_repo_url with a password is a
// problem at its line, and the password is not printed.
func TestValidateRepoCredentials(t *testing.T) {
	const password = "validate-Secret-7"
	data, err := os.ReadFile("testdata/render/repo/clusters/6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d/grafana.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "grafana.yaml")
	withPass := strings.Replace(string(data), "http://127.0.0.1:1/charts", "https://ci:"+password+"@charts.example.com/charts", 1)
	if err := os.WriteFile(file, []byte(withPass), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code, msg := runValidate(t, file)
	want := file + ":15: spec.helm_repo_url: Value error, helm_repo_url must not contain a user name or password"
	if code != 1 || !strings.HasPrefix(stdout, want) {
		t.Errorf("exit %d %q, stdout %q; want 1 and %q", code, msg, stdout, want)
	}
	if strings.Contains(stdout+stderr+msg, password) {
		t.Errorf("the password was printed: %s%s", stdout, stderr)
	}
}

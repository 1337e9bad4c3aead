package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runRenderCmd runs `mengi render args...` in process and returns what it
// printed, its exit code and the message it exits with.
func runRenderCmd(t *testing.T, args ...string) (stdout, stderr string, code int, msg string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name:           "mengi",
		Commands:       []*cli.Command{renderCommand()},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {}, // keep the test process alive
	}
	err := app.Run(append([]string{"mengi", "render", "--cache", t.TempDir()}, args...))
	if err != nil {
		var ec cli.ExitCoder
		if !errors.As(err, &ec) {
			t.Fatalf("render %v: %v", args, err)
		}
		code, msg = ec.ExitCode(), err.Error()
	}
	return out.String(), errOut.String(), code, msg
}

const renderCluster = "testdata/render/repo/clusters/6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d"

func readGolden(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../render/testdata/golden/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stdout string // exact, when not empty
		stderr []string
		code   int
		msg    string
	}{
		// The domain comes from the cluster record beside the file's folder.
		{name: "values_yaml", args: []string{renderCluster + "/blog.yaml"}, stdout: readGolden(t, "web_app.values.yaml")},
		{name: "manifests", args: []string{"--manifests", renderCluster + "/blog.yaml"},
			stdout: "# release blog in namespace mengi-blog, chart mengi-app 1.0.0\n" + readGolden(t, "web_app.manifests.yaml")},
		{name: "domain flag wins", args: []string{"--cluster-domain", "", renderCluster + "/blog.yaml"},
			stdout: readGolden(t, "web_app-no-domain.values.yaml")},
		{name: "example file, no record", args: []string{"--manifests", "--cluster-domain", "apps.example.com", "../../examples/web_app.yaml"},
			stdout: "# release blog in namespace mengi-blog, chart mengi-app 1.0.0\n" + readGolden(t, "web_app.manifests.yaml")},
		{name: "invalid file", args: []string{"testdata/render/broken.yaml"},
			stderr: []string{"broken.yaml:13: spec.replicas: Input should be greater than or equal to 0"},
			code:   1, msg: "is not a valid deployment"},
		{name: "refused by the rules", args: []string{renderCluster + "/ingress-without-port.yaml"},
			stderr: []string{"ingress-without-port.yaml:17: spec.config.ingress: Value error, config.ingress needs container_port"},
			code:   1, msg: "is not a valid deployment"},
		{name: "chart unavailable", args: []string{renderCluster + "/grafana.yaml"},
			stderr: []string{"grafana.yaml:15: spec.helm_repo_url: GET http://127.0.0.1:1/charts/index.yaml: "},
			code:   1, msg: "grafana.yaml: ChartUnavailable"},
		{name: "no file", args: nil, code: 2, msg: "name one deployment file"},
		{name: "missing file", args: []string{"testdata/render/none.yaml"}, code: 2, msg: "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code, msg := runRenderCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("exit %d %q; want %d %q (stderr %s)", code, msg, tc.code, tc.msg, stderr)
			}
			if tc.stdout != "" && stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tc.stdout)
			}
			if tc.code != 0 && stdout != "" {
				t.Errorf("stdout %q on failure; want nothing", stdout)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q lacks %q", stderr, s)
				}
			}
		})
	}
}

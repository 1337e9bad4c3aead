package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/mengi-cloud/gitops/render"
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
			stdout: "# release blog in namespace mengi-blog, chart mengi-app " + render.BuiltinChartVersion + "\n" + readGolden(t, "web_app.manifests.yaml")},
		{name: "domain flag wins", args: []string{"--cluster-domain", "", renderCluster + "/blog.yaml"},
			stdout: readGolden(t, "web_app-no-domain.values.yaml")},
		{name: "example file, no record", args: []string{"--manifests", "--cluster-domain", "apps.example.com", "../../examples/web_app.yaml"},
			stdout: "# release blog in namespace mengi-blog, chart mengi-app " + render.BuiltinChartVersion + "\n" + readGolden(t, "web_app.manifests.yaml")},
		{name: "invalid file", args: []string{"testdata/render/broken.yaml"},
			stderr: []string{"broken.yaml:13: spec.replicas: Input should be greater than or equal to 0"},
			code:   1, msg: "is not a valid deployment"},
		{name: "refused by the rules", args: []string{renderCluster + "/ingress-without-port.yaml"},
			stderr: []string{"ingress-without-port.yaml:17: spec.config.ingress: Value error, config.ingress needs container_port"},
			code:   1, msg: "is not a valid deployment"},
		{name: "chart unavailable", args: []string{renderCluster + "/grafana.yaml"},
			stderr: []string{"grafana.yaml:15: spec.helm_repo_url: cannot fetch http://127.0.0.1:1/charts/index.yaml: the host could not be reached or is not allowed"},
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

// TestRenderFetchFlags: --allow-fetch admits a chart repository on
// loopback, --fetch-credentials gives it its password; without them the
// fetch is refused, or unauthorized. The password is never printed.
func TestRenderFetchFlags(t *testing.T) {
	const password = "render-Secret-9"
	ch, err := loader.LoadDir("../../render/testdata/charts/mini")
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	index := "apiVersion: v1\nentries:\n  mini:\n    - name: mini\n      version: 0.1.0\n      urls: [mini-0.1.0.tgz]\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if user, pass, ok := req.BasicAuth(); !ok || user != "ci" || pass != password {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch req.URL.Path {
		case "/charts/index.yaml":
			w.Write([]byte(index))
		case "/charts/mini-0.1.0.tgz":
			w.Write(archive)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	data, err := os.ReadFile(renderCluster + "/grafana.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := strings.NewReplacer("http://127.0.0.1:1/charts", srv.URL+"/charts", "helm_chart_name: grafana", "helm_chart_name: mini",
		"helm_chart_version: 8.5.1", "helm_chart_version: 0.1.0").Replace(string(data))
	deployment := filepath.Join(dir, "mini.yaml")
	creds := filepath.Join(dir, "credentials.yaml")
	if err := os.WriteFile(deployment, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte(srv.URL+"/charts:\n  username: ci\n  password: "+password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		args   []string
		stdout string
		stderr string
		code   int
	}{
		{name: "refused", args: []string{deployment}, code: 1,
			stderr: "mini.yaml:15: spec.helm_repo_url: cannot fetch " + srv.URL + "/charts/index.yaml: the host could not be reached or is not allowed"},
		{name: "allowed, no credentials", args: []string{"--allow-fetch", "127.0.0.1/32", deployment}, code: 1,
			stderr: "401 Unauthorized (the repository needs credentials: the operator configures them with mengi agent --fetch-credentials)"},
		{name: "allowed, with credentials", args: []string{"--allow-fetch", "10.0.0.0/8", "--allow-fetch", "127.0.0.1/32", "--fetch-credentials", creds, deployment},
			stdout: "deploymentId: c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e06"},
		{name: "bad allow-list entry", args: []string{"--allow-fetch", "http://x", deployment}, code: 2, stderr: ""},
		{name: "missing credentials file", args: []string{"--allow-fetch", "127.0.0.1", "--fetch-credentials", creds + ".none", deployment}, code: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code, msg := runRenderCmd(t, tc.args...)
			t.Logf("exit %d %s; stderr: %s", code, msg, stderr)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d %q, stdout %q, stderr %q; want %d, %q, %q", code, msg, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if strings.Contains(stdout+stderr+msg, password) {
				t.Errorf("the password was printed")
			}
		})
	}
}

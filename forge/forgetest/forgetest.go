// Package forgetest runs a real Git forge, Gitea, on 127.0.0.1 for tests:
// repositories that take git pushes over HTTP, pull requests, commit
// statuses, comments and webhooks, all through Gitea's own code.
//
//	func TestSomething(t *testing.T) {
//		f := forgetest.Start(t)
//		clone := f.CreateRepo("deployments")
//		// git push f.AuthCloneURL("deployments") ...
//		f.WaitNotEmpty("deployments")
//		sha := f.CommitFile("deployments", "main", "bump", "apps/demo.yaml", yaml, "bump replicas")
//		pr := f.OpenPR("deployments", "bump", "main", "Bump demo")
//		...
//	}
//
// The binary and its options/ folder come from tools/forge/build.sh (`make
// forge-bin`); $MENGI_FORGE_BIN names their folder (`make test` sets it).
// Start fails the test, never skips it, when the variable is unset or Gitea
// does not start. Each Start runs its own Gitea (SQLite, a free port, a
// folder in t.TempDir()) in about 1.7 s and about 175 MB of memory; it stops
// when the test ends. Gitea's log is printed when the test failed.
//
// The methods of Forge call t.Fatalf of the test given to Start on any error;
// use WithT to call them from a subtest. Gitea does some work after a
// request returns (the empty flag after a first push, mergeability, webhook
// delivery): WaitNotEmpty, WaitMergeable and HookSink.Wait poll for it.
//
// Every repository created by CreateRepo logs the updates of its refs
// (core.logAllRefUpdates), so AssertNoForcePush can prove from the reflog
// that a branch only ever moved forward.
package forgetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// EnvBin names the folder with the gitea binary and its options/ folder, as
// printed by tools/forge/build.sh --print-dir.
const EnvBin = "MENGI_FORGE_BIN"

// Admin is the user that owns the repositories CreateRepo makes and whose
// token Token returns.
const Admin = "forgeadmin"

// password is every user's password; the tests use tokens.
const password = "Forge-test-passw0rd"

// T is what the harness needs of a test: testing.TB has it, and
// `mengi bench forge` passes its own.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
	Cleanup(func())
	Failed() bool
}

// Forge is one running Gitea.
type Forge struct {
	t       T
	bin     string // the gitea binary
	dir     string // work folder: app.ini, data/, repos/, custom/
	logPath string
	url     string // http://127.0.0.1:port (no trailing slash)
	token   string
	http    *http.Client
	env     []string
}

// Start starts a Gitea for t and stops it when t ends. It fails t when
// $MENGI_FORGE_BIN is unset or Gitea does not start.
func Start(t T) *Forge {
	t.Helper()
	binDir := os.Getenv(EnvBin)
	if binDir == "" {
		t.Fatalf("forgetest: $%s is not set: run `make forge-bin` (about 8 minutes the first time) and set %s=$(bash tools/forge/build.sh --print-dir), or run `make test`", EnvBin, EnvBin)
	}
	bin := filepath.Join(binDir, "gitea")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("forgetest: no gitea binary in $%s=%s: run `make forge-bin`", EnvBin, binDir)
	}
	if _, err := os.Stat(filepath.Join(binDir, "options", "locale")); err != nil {
		t.Fatalf("forgetest: no options/locale in $%s=%s: run `make forge-bin`", EnvBin, binDir)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("forgetest: git is not on PATH: %v", err)
	}
	dir := t.TempDir()
	f := &Forge{
		t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "gitea.log"),
		http: &http.Client{Timeout: 30 * time.Second},
	}
	f.env = append(cleanEnv(), "GITEA_WORK_DIR="+dir, "GITEA_CUSTOM="+filepath.Join(dir, "custom"), "HOME="+dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("forgetest: the end of Gitea's log %s:\n%s", f.logPath, tail(f.logPath, 40))
		}
	})
	start := time.Now()
	var err error
	for attempt := 1; ; attempt++ {
		err = f.start(binDir)
		// The port was free when picked; another process may take it before
		// Gitea binds it.
		if err == nil || attempt == 3 || !strings.Contains(tail(f.logPath, 20), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("forgetest: Gitea did not start: %v\nthe end of its log %s:\n%s", err, f.logPath, tail(f.logPath, 40))
	}
	t.Logf("forgetest: Gitea at %s in %v (folder %s)", f.url, time.Since(start).Round(time.Millisecond), dir)
	return f
}

// WithT returns a copy of f whose methods fail t instead of the test given to
// Start; use it in subtests.
func (f *Forge) WithT(t T) *Forge {
	g := *f
	g.t = t
	return &g
}

// URL returns Gitea's root URL, http://127.0.0.1:port, without a trailing slash.
func (f *Forge) URL() string { return f.url }

// APIURL returns the REST API's root, URL()+"/api/v1".
func (f *Forge) APIURL() string { return f.url + "/api/v1" }

// Token returns the admin's access token (every scope).
func (f *Forge) Token() string { return f.token }

// Owner returns the owner of the repositories CreateRepo makes: Admin.
func (f *Forge) Owner() string { return Admin }

// Dir returns Gitea's work folder.
func (f *Forge) Dir() string { return f.dir }

// LogPath returns the file Gitea logs to.
func (f *Forge) LogPath() string { return f.logPath }

// RepoDir returns the bare repository of repo (owned by Owner) on disk.
func (f *Forge) RepoDir(repo string) string {
	return filepath.Join(f.dir, "repos", strings.ToLower(Admin), strings.ToLower(repo)+".git")
}

// start writes app.ini, creates the database, the admin and its token, and
// starts `gitea web` on a free port.
func (f *Forge) start(binDir string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	f.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("current user: %w", err)
	}
	secrets := map[string]string{}
	for _, name := range []string{"SECRET_KEY", "INTERNAL_TOKEN", "JWT_SECRET"} {
		out, err := f.cli(ctx, "generate", "secret", name)
		if err != nil {
			return err
		}
		secrets[name] = out
	}
	ini := appINI(iniParams{
		Dir: f.dir, Port: port, User: u.Username, Root: os.Geteuid() == 0,
		Static: binDir, Secrets: secrets,
	})
	if err := os.WriteFile(filepath.Join(f.dir, "app.ini"), []byte(ini), 0o600); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data", "gitea.db")); err != nil {
		if _, err := f.cli(ctx, "migrate"); err != nil {
			return err
		}
		if _, err := f.cli(ctx, "admin", "user", "create", "--username", Admin, "--password", password,
			"--email", Admin+"@example.test", "--admin", "--must-change-password=false"); err != nil {
			return err
		}
		tok, err := f.cli(ctx, "admin", "user", "generate-access-token", "--username", Admin,
			"--token-name", "forgetest", "--scopes", "all", "--raw")
		if err != nil {
			return err
		}
		f.token = tok
	}
	return f.web()
}

// web starts `gitea web` and waits until /api/healthz answers 200.
func (f *Forge) web() error {
	logf, err := os.OpenFile(f.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin, "--config", filepath.Join(f.dir, "app.ini"), "web")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = f.dir, f.env, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("gitea web: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("gitea web exited before it was ready: %v", err)
		default:
		}
		resp, err := f.http.Get(f.url + "/api/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s/api/healthz not 200 within 60 s (last: %v)", f.url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.t.Cleanup(stop)
	return nil
}

// cli runs a gitea command with f's app.ini and returns the last line of its
// standard output (Gitea logs to standard output before the result).
func (f *Forge) cli(ctx context.Context, args ...string) (string, error) {
	if _, err := os.Stat(filepath.Join(f.dir, "app.ini")); err == nil {
		args = append([]string{"--config", filepath.Join(f.dir, "app.ini")}, args...)
	}
	cmd := exec.CommandContext(ctx, f.bin, args...)
	cmd.Dir, cmd.Env = f.dir, f.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gitea %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

type iniParams struct {
	Dir     string
	Port    int
	User    string
	Root    bool
	Static  string
	Secrets map[string]string
}

// appINI returns Gitea's configuration: API and git over HTTP only, SQLite,
// in-memory queues (webhooks are delivered within milliseconds), webhooks
// allowed to loopback addresses, nothing that reaches the network.
func appINI(p iniParams) string {
	root := ""
	if p.Root {
		root = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n"
	}
	return fmt.Sprintf(`APP_NAME = forgetest
RUN_MODE = prod
RUN_USER = %[3]s
WORK_PATH = %[1]s
%[4]s
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]d
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:%[2]d/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = %[1]s/data
STATIC_ROOT_PATH = %[5]s

[database]
DB_TYPE = sqlite3
PATH = %[1]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = %[1]s/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[6]s
INTERNAL_TOKEN = %[7]s

[oauth2]
ENABLED = false
JWT_SECRET = %[8]s

[service]
DISABLE_REGISTRATION = true

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 5

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[actions]
ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[log]
MODE = console
LEVEL = info
`, p.Dir, p.Port, p.User, root, p.Static, p.Secrets["SECRET_KEY"], p.Secrets["INTERNAL_TOKEN"], p.Secrets["JWT_SECRET"])
}

// cleanEnv returns the environment without the variables that would change
// what git or Gitea does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") || strings.HasPrefix(k, "GITEA_") || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		lines = append(lines, fmt.Sprintf("(%v)", err))
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
)

// helperEnv makes the test binary act as mengi-server (see serverCmd).
const helperEnv = "MENGI_SERVER_HELPER_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(servercmd.Run(newApp(), append([]string{"mengi-server"}, os.Args[1:]...)))
	}
	os.Exit(m.Run())
}

// serverCmd runs `mengi-server args...` in a child process: this test
// binary, which TestMain turns into the command.
func serverCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	return cmd
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := serverCmd(args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("mengi-server %v: %v\n%s", args, err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// TestLinksNoKubernetesOrHelm keeps the server binary small: it must not
// depend on client-go, the Kubernetes API packages or Helm (only on
// sigs.k8s.io/yaml, a YAML library).
func TestLinksNoKubernetesOrHelm(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), out)
	}
	for _, p := range deps {
		if (strings.Contains(p, "k8s.io/") && p != "sigs.k8s.io/yaml") || strings.HasPrefix(p, "helm.sh/") {
			t.Errorf("mengi-server depends on %s", p)
		}
	}
}

var listenLine = regexp.MustCompile(`msg="API listening" addr=(\S+)`)

// startServe starts `mengi-server serve --listen 127.0.0.1:0 args...`,
// killed when the test ends, and returns it with its base URL.
func startServe(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd, base, _ := startServeLogged(t, args...)
	return cmd, base
}

// startServeLogged is startServe that also keeps the server's log.
func startServeLogged(t *testing.T, args ...string) (*exec.Cmd, string, *serverLog) {
	t.Helper()
	cmd := serverCmd(append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &serverLog{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.add(sc.Text())
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "http://" + a, logs
	case <-time.After(30 * time.Second):
		t.Fatalf("mengi-server serve did not start listening:\n%s", logs)
	}
	return nil, "", nil
}

// serverLog is the lines a server process logged so far.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

// Lines returns the lines logged so far.
func (l *serverLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *serverLog) String() string { return strings.Join(l.Lines(), "\n") }

// TestServeCreatesAndStops drives the server process as an operator does:
// a key and a cluster made with its tools, a deployment created over HTTP
// and read back, then SIGTERM; the create is one commit authored by the
// key's user.
func TestServeCreatesAndStops(t *testing.T) {
	repo := t.TempDir() + "/repo"
	key := run(t, "keys", "add", "--repo", repo, "--name", "Ada Ops", "--email", "ada@example.com")
	cluster := run(t, "clusters", "add", "--repo", repo, "--name", "prod")

	cmd, base := startServe(t, "--repo", repo)

	body := `{"cluster_id":"` + cluster + `","name":"web","docker_image":"nginx:1.27","replicas":2}`
	code, created := call(t, http.MethodPost, base+"/deployments", key, body)
	if code != http.StatusCreated {
		t.Fatalf("POST /deployments: %d %v", code, created)
	}
	id, _ := created["id"].(string)
	code, got := call(t, http.MethodGet, base+"/deployments/"+id, key, "")
	if code != http.StatusOK || got["name"] != "web" || got["replicas"] != float64(2) || got["git_path"] != created["git_path"] {
		t.Fatalf("GET /deployments/%s: %d %v (created %v)", id, code, got, created)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mengi-server serve after SIGTERM: %v", err)
	}
	log, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%an <%ae>%n%s", "--", created["git_path"].(string)).Output()
	if err != nil {
		t.Fatalf("git log: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(log)), "\n"); len(lines) != 2 || lines[0] != "Ada Ops <ada@example.com>" || !strings.Contains(lines[1], "web") {
		t.Errorf("last commit of %s: %q", created["git_path"], log)
	}
}

func call(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON: %v", method, url, resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

// TestServeAnswersUnreadableRequestsInJSON: the server process answers
// the requests net/http refuses before any handler (2 MB of headers, a
// malformed request line, no Host) with a JSON detail, like the API's
// errors, and serves the next request as usual.
func TestServeAnswersUnreadableRequestsInJSON(t *testing.T) {
	_, base := startServe(t, "--repo", t.TempDir()+"/repo")
	addr := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		request string
		status  int
		detail  string
	}{
		{"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge,
			"Request headers too large: at most 64 KiB (65536 bytes) of request line and headers is accepted"},
		{"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n", http.StatusBadRequest, "Bad Request: malformed request line or headers"},
		{"GET /healthz HTTP/1.1\r\n\r\n", http.StatusBadRequest, "Bad Request: missing required Host header"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go io.WriteString(conn, c.request) // fails once the server hangs up on 2 MB
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%.40q: %v", c.request, err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		var got struct{ Detail string }
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != c.status || got.Detail != c.detail || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%.40q: %d %s %q, want %d with detail %q", c.request, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status, c.detail)
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after them: %d", resp.StatusCode)
	}
}

// TestServeRefusesBadLimits: a negative or non-numeric --max-requests or
// --rate-limit stops serve before it touches the repository, with one
// line naming the flag.
func TestServeRefusesBadLimits(t *testing.T) {
	for _, c := range []struct{ flag, value, want string }{
		{"--max-requests", "-3", "--max-requests -3: want a number of requests, 0 or more"},
		{"--rate-limit", "-1", "--rate-limit -1: want requests per second, 0 or more"},
		{"--rate-limit", "NaN", "--rate-limit NaN: want requests per second, 0 or more"},
		{"--max-requests", "many", "invalid value \"many\" for flag -max-requests"},
	} {
		repo := filepath.Join(t.TempDir(), "repo")
		var stderr bytes.Buffer
		cmd := serverCmd("serve", "--repo", repo, "--listen", "127.0.0.1:0", c.flag, c.value)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("serve %s %s: %v\n%s\nwant %q", c.flag, c.value, err, stderr.String(), c.want)
		}
		if _, err := os.Stat(repo); !os.IsNotExist(err) {
			t.Errorf("serve %s %s made the repository", c.flag, c.value)
		}
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore/disktest"
)

// answer is what the server said to one create.
type answer struct {
	at         time.Time // when the answer came
	name, id   string
	code       int // 0: no answer (the connection failed)
	detail     string
	retryAfter string
}

// writeLoad posts creates from concurrent clients and keeps every answer;
// each 201 is also appended to an ack log as it comes.
type writeLoad struct {
	t                  *testing.T
	base, key, cluster string
	ackLog             *os.File
	mu                 sync.Mutex
	answers            []answer
	acked              map[string]string // id → name
}

func newWriteLoad(t *testing.T, base, key, cluster string) *writeLoad {
	f, err := os.Create(filepath.Join(t.TempDir(), "acks.log")) // not on the small disk
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &writeLoad{t: t, base: base, key: key, cluster: cluster, ackLog: f, acked: map[string]string{}}
}

// start runs workers clients posting creates named prefix-wW-nN until
// the returned stop is called.
func (l *writeLoad) start(prefix string, workers int) (stop func()) {
	client := &http.Client{Timeout: 60 * time.Second}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				name := fmt.Sprintf("%s-w%d-n%d", prefix, w, i)
				a := l.post(client, name)
				if a.code == 0 {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

func (l *writeLoad) post(client *http.Client, name string) answer {
	body := fmt.Sprintf(`{"cluster_id":%q,"name":%q,"docker_image":"nginx:1.27","replicas":1}`, l.cluster, name)
	req, _ := http.NewRequest(http.MethodPost, l.base+"/deployments", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", "application/json")
	a := answer{name: name}
	resp, err := client.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out map[string]any
		json.Unmarshal(b, &out)
		a.code, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		switch d := out["detail"].(type) {
		case string:
			a.detail = d
		case nil:
		default:
			a.detail = string(b)
		}
		a.id, _ = out["id"].(string)
	} else {
		a.detail = err.Error()
	}
	a.at = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, a)
	if a.code == http.StatusCreated {
		l.acked[a.id] = name
		fmt.Fprintf(l.ackLog, "%s %s %s\n", a.at.Format(time.RFC3339Nano), a.id, name)
	}
	return a
}

// since returns the answers received from t on.
func (l *writeLoad) since(t time.Time) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if !a.at.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

func (l *writeLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcks waits until n creates in all were acknowledged.
func (l *writeLoad) waitAcks(n int, within time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for l.ackCount() < n {
		if time.Now().After(deadline) {
			l.t.Fatalf("only %d creates acknowledged in %v, waiting for %d; answers: %s", l.ackCount(), within, n, summarize(l.since(time.Time{})))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// summarize counts answers by status and detail.
func summarize(as []answer) string {
	counts := map[string]int{}
	for _, a := range as {
		k := strconv.Itoa(a.code)
		if a.code != http.StatusCreated {
			k += fmt.Sprintf(" Retry-After=%q %q", a.retryAfter, a.detail)
		}
		counts[k]++
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d × %s", counts[k], k)
	}
	return b.String()
}

// cpuSeconds is the CPU time (user and system) process pid has used.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime are
	// the 14th and 15th of the line, in clock ticks (100 a second).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// diskFullDetail is what a write refused for a full disk says.
const diskFullDetail = "The server's disk is full: the change was not written. Try again once an operator has freed space."

// TestServeDiskFull fills the disk of a `mengi-server serve` process's
// repository (a 256 MiB tmpfs) while 8 clients create deployments through
// the API, then frees it. While it is full every create is refused with
// 503, Retry-After and a detail that says so (no 500, no path), reads go
// on, and the process idles (no spinning); once space is back writes
// resume without a restart. Nothing acknowledged is lost: every 201 is a
// commit of its own and readable after a restart, no refused create is in
// the repository, and git fsck --strict is clean.
func TestServeDiskFull(t *testing.T) {
	mnt := disktest.Mount(t, 256<<20)
	if mnt == "" {
		return // ran in a namespace
	}
	repo := filepath.Join(mnt, "repo")
	key := run(t, "keys", "add", "--repo", repo, "--name", "Disk Full", "--email", "full@example.com")
	cluster := run(t, "clusters", "add", "--repo", repo, "--name", "prod")
	cmd, base, logs := startServeLogged(t, "--repo", repo, "--rate-limit", "0")
	load := newWriteLoad(t, base, key, cluster)

	// 1. Writes go through.
	stop := load.start("a", 8)
	load.waitAcks(40, time.Minute)

	// 2. The disk fills under them.
	filler := disktest.Fill(t, mnt)
	fullAt := time.Now()
	t.Logf("disk filled (%d MiB taken, %d bytes left) after %d creates acknowledged", filler.Bytes>>20, disktest.Free(t, mnt), load.ackCount())
	time.Sleep(3 * time.Second)
	stop()
	whileFull := load.since(fullAt.Add(time.Second)) // batches in flight at the fill may still land
	t.Logf("answers from 1 s after the fill on: %s", summarize(whileFull))
	refused, wrong := 0, 0
	for _, a := range whileFull {
		switch {
		case a.code == http.StatusServiceUnavailable && a.detail == diskFullDetail && a.retryAfter != "":
			refused++
		case a.code == http.StatusCreated:
			// Space a failed batch gave back can take a small one.
		default:
			wrong++
		}
	}
	if wrong > 0 || refused == 0 {
		t.Errorf("%d creates on a full disk answered otherwise than 503 with Retry-After and %q: %s", wrong, diskFullDetail, summarize(whileFull))
	}

	// 3. Idle on a full disk: reads work, a write is refused at once, and
	// the process does not spin.
	client := &http.Client{Timeout: 30 * time.Second}
	cpu0, idleFrom := cpuSeconds(t, cmd.Process.Pid), time.Now()
	time.Sleep(3 * time.Second)
	idleCPU := cpuSeconds(t, cmd.Process.Pid) - cpu0
	idleFor := time.Since(idleFrom).Seconds()
	t.Logf("idle on the full disk: %.2f s of CPU in %.1f s", idleCPU, idleFor)
	if idleCPU > 0.1*idleFor {
		t.Errorf("the server used %.2f s of CPU in %.1f s idle on a full disk (spinning?)", idleCPU, idleFor)
	}
	for id, name := range firstN(load.acked, 5) {
		if code, got := call(t, http.MethodGet, base+"/deployments/"+id, key, ""); code != http.StatusOK || got["name"] != name {
			t.Errorf("GET %s on a full disk: %d %v", id, code, got)
		}
	}
	if code, n, err := getList(client, base+"/deployments?limit=5", key); code != http.StatusOK || n != 5 {
		t.Errorf("GET /deployments on a full disk: %d, %d deployments, %v", code, n, err)
	}
	start := time.Now()
	if a := load.post(client, "idle-write"); a.code != http.StatusServiceUnavailable || a.detail != diskFullDetail || a.retryAfter == "" {
		t.Errorf("a create on an idle full disk: %d Retry-After=%q %q", a.code, a.retryAfter, a.detail)
	} else {
		t.Logf("a create on an idle full disk: 503 in %v, Retry-After: %s", time.Since(start).Round(time.Millisecond), a.retryAfter)
	}

	// 4. Space comes back: writes resume, without a restart.
	stop = load.start("b", 8)
	time.Sleep(time.Second)
	filler.Remove(t)
	freedAt := time.Now()
	deadline := freedAt.Add(30 * time.Second)
	var resumedAt time.Time
	for resumedAt.IsZero() {
		for _, a := range load.since(freedAt) {
			if a.code == http.StatusCreated {
				resumedAt = a.at
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no create acknowledged within 30 s of the space coming back: %s\n%s", summarize(load.since(freedAt)), logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	stop()
	after := load.since(resumedAt.Add(200 * time.Millisecond))
	for _, a := range after {
		if a.code != http.StatusCreated {
			t.Errorf("creates after the space came back not all acknowledged: %s", summarize(after))
			break
		}
	}
	t.Logf("space back: first create acknowledged %v after; then %d answers: %s", resumedAt.Sub(freedAt).Round(time.Millisecond), len(after), summarize(after))

	// 5. The log says it once per kind, not once per write, and says
	// when writes and merges work again.
	for _, msg := range []string{"writes committed again: the repository's disk has space", "packs are merged again: the disk has space"} {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(logs.String(), msg) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log 30 s after the space came back:\n%s", msg, logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var diskLines []string
	for _, l := range logs.Lines() {
		if low := strings.ToLower(l); !strings.Contains(low, "msg=request ") && (strings.Contains(low, "disk") || strings.Contains(low, "no space")) {
			diskLines = append(diskLines, l)
		}
	}
	t.Logf("%d log lines about the disk:\n%s", len(diskLines), strings.Join(diskLines, "\n"))
	if len(diskLines) > 12 {
		t.Errorf("%d log lines about the full disk; it should be said once per kind of failure", len(diskLines))
	}

	// 6. Nothing acknowledged is lost, nothing refused was written.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, logs)
	}
	checkAcked(t, repo, key, load)
}

// checkAcked restarts the server on repo and reads back every create load
// had acknowledged; then, at rest, checks that each is one commit, that
// no create answered otherwise is in the repository, and git fsck --strict.
func checkAcked(t *testing.T, repo, key string, load *writeLoad) {
	t.Helper()
	cmd, base := startServe(t, "--repo", repo, "--rate-limit", "0")
	lost := 0
	for id, name := range load.acked {
		code, got := call(t, http.MethodGet, base+"/deployments/"+id, key, "")
		if code != http.StatusOK || got["name"] != name {
			lost++
			t.Errorf("acknowledged create %s (%s) after a restart: %d %v", id, name, code, got)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("fsck", "--strict", "--no-dangling")
	seen := map[string]int{}
	for _, id := range strings.Fields(git("log", "--format=%(trailers:key=Deployment-Id,valueonly)", "main")) {
		seen[id]++
	}
	for id := range load.acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged create %s is in %d commits, want 1", id, seen[id])
		}
	}
	files := map[string]bool{}
	for _, p := range strings.Fields(git("ls-tree", "-r", "--name-only", "main")) {
		files[strings.TrimSuffix(filepath.Base(p), ".yaml")] = true
	}
	refused, other := 0, 0
	for _, a := range load.since(time.Time{}) {
		switch a.code {
		case http.StatusCreated:
		case http.StatusServiceUnavailable:
			refused++
			if files[a.name] {
				t.Errorf("create %s was answered %d %q but is in the repository", a.name, a.code, a.detail)
			}
		default:
			other++
		}
	}
	t.Logf("figures: %d creates acknowledged, %d refused with 503, %d other answers, %d acknowledged lost; %d commits with a Deployment-Id; git fsck --strict clean",
		len(load.acked), refused, other, lost, len(seen))
}

// getList gets a list of deployments and counts them.
func getList(client *http.Client, url, key string) (int, int, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var list []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&list)
	return resp.StatusCode, len(list), err
}

// firstN returns up to n entries of m.
func firstN(m map[string]string, n int) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if len(out) == n {
			break
		}
		out[k] = v
	}
	return out
}

// TestServeStartsOnFullDisk: `serve` on a repository whose disk is full
// starts and serves reads; writes are refused with the disk-full 503
// until space is freed, then taken without a restart. A push check
// installed by an earlier installation stays (with a warning) when it
// cannot be brought up to date, and is at the next start with space; a
// SIGTERM on the full disk exits cleanly. A repository that does not
// exist yet cannot be made on the full disk: serve refuses to start,
// saying the disk is full.
func TestServeStartsOnFullDisk(t *testing.T) {
	mnt := disktest.Mount(t, 32<<20)
	if mnt == "" {
		return // ran in a namespace
	}
	repo := filepath.Join(mnt, "repo")
	key := run(t, "keys", "add", "--repo", repo, "--name", "Disk Full", "--email", "full@example.com")
	cluster := run(t, "clusters", "add", "--repo", repo, "--name", "prod")
	cmd, base := startServe(t, "--repo", repo)
	load := newWriteLoad(t, base, key, cluster)
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range 3 {
		if a := load.post(client, fmt.Sprintf("before-%d", i)); a.code != http.StatusCreated {
			t.Fatalf("create before the disk filled: %d %q", a.code, a.detail)
		}
	}
	sigterm := func(cmd *exec.Cmd, logs fmt.Stringer) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%v", err, logs)
		}
	}
	sigterm(cmd, nil)
	// The push check an earlier installation (another executable) wrote.
	hook := filepath.Join(repo, "hooks", "pre-receive")
	script, err := os.ReadFile(hook)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.ReplaceAll(string(script), os.Args[0], "/opt/mengi-old/mengi-server")
	if err := os.WriteFile(hook, []byte(old), 0o755); err != nil {
		t.Fatal(err)
	}

	filler := disktest.Fill(t, mnt)
	out, err := serverCmd("serve", "--listen", "127.0.0.1:0", "--repo", filepath.Join(mnt, "new")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "disk is full") || !strings.Contains(string(out), "no space left on device") {
		t.Errorf("serve of a new repository on a full disk: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(mnt, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve refused to start, yet left the new repository's folder: %v", err)
	}

	cmd, base, logs := startServeLogged(t, "--repo", repo)
	load.base = base
	if code, n, err := getList(client, base+"/deployments", key); code != http.StatusOK || n != 3 {
		t.Errorf("GET /deployments after a start on a full disk: %d, %d deployments, %v", code, n, err)
	}
	for id, name := range load.acked {
		if code, got := call(t, http.MethodGet, base+"/deployments/"+id, key, ""); code != http.StatusOK || got["name"] != name {
			t.Errorf("GET %s after a start on a full disk: %d %v", id, code, got)
		}
	}
	if a := load.post(client, "while-full"); a.code != http.StatusServiceUnavailable || a.detail != diskFullDetail || a.retryAfter == "" {
		t.Errorf("a create after a start on a full disk: %d Retry-After=%q %q", a.code, a.retryAfter, a.detail)
	}
	if got, _ := os.ReadFile(hook); string(got) != old || !strings.Contains(logs.String(), "the push check stays as installed before") {
		t.Errorf("the earlier push check on a full disk: now\n%s\nlog:\n%s", got, logs)
	}
	sigterm(cmd, logs)
	t.Logf("the log of a start and a stop on a full disk:\n%s", logs)

	cmd, base, logs = startServeLogged(t, "--repo", repo)
	load.base = base
	if a := load.post(client, "still-full"); a.code != http.StatusServiceUnavailable {
		t.Errorf("a create after a second start on the full disk: %d %q", a.code, a.detail)
	}
	filler.Remove(t)
	if a := load.post(client, "after"); a.code != http.StatusCreated {
		t.Errorf("a create once space was freed: %d %q\n%s", a.code, a.detail, logs)
	}
	sigterm(cmd, logs)
	checkAcked(t, repo, key, load)
	if got, _ := os.ReadFile(hook); string(got) != string(script) {
		t.Errorf("the push check after a start with space:\n%s\nwant\n%s", got, script)
	}
}

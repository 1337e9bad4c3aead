package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a `mengi serve` child process.
type server struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for one writer and other readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listenLine = regexp.MustCompile(`msg="API listening" addr=(\S+)`)

func startServer(t *testing.T, repo string) *server {
	t.Helper()
	cmd := mengiCmd("serve", "--repo", repo, "--listen", "127.0.0.1:0", "--rate-limit", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &syncBuffer{}}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs.WriteString(sc.Text() + "\n")
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case s.addr = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start listening:\n%s", s.logs.String())
	}
	return s
}

func post(client *http.Client, addr, key, body string) (int, map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/deployments", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	return resp.StatusCode, out, nil
}

// storm posts creates from workers concurrent clients until the returned
// stop is called (or the server goes away). ack gets the id and name of
// each 201; refused, when not nil, any other answer (that client stops).
func storm(t *testing.T, addr, key, cluster, prefix string, workers int, ack func(id, name string), refused func(name string, code int, out map[string]any)) (stop func()) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	done := make(chan struct{})
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
				body := fmt.Sprintf(`{"cluster_id":%q,"name":%q,"docker_image":"nginx:1.27","replicas":1}`, cluster, name)
				code, out, err := post(client, addr, key, body)
				switch {
				case err != nil:
					return // the server went away
				case code == http.StatusCreated:
					ack(out["id"].(string), name)
				case refused != nil:
					refused(name, code, out)
					return
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// TestSIGKILLDuringWriteStorm kills the server in the middle of concurrent
// creates, 20 times at moments spread over the first second of each run
// (MENGI_CRASH_KILLS times: `make bench-store` runs 100), restarts it,
// and checks that every acknowledged deployment is there, in exactly one
// commit, and the repository is intact. Each restart must listen within
// 30 s; the slowest is logged.
func TestSIGKILLDuringWriteStorm(t *testing.T) {
	repo := t.TempDir() + "/repo"
	key := strings.TrimSpace(runMengi(t, "keys", "add", "--repo", repo, "--name", "Storm", "--email", "storm@example.com"))
	cluster := strings.TrimSpace(runMengi(t, "clusters", "add", "--repo", repo, "--name", "prod"))

	acked := map[string]string{} // id → name
	var mu sync.Mutex
	kills := 20
	if v := os.Getenv("MENGI_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MENGI_CRASH_KILLS=%q: want a number of kills", v)
		}
		kills = n
	}
	var starts []time.Duration
	for round := range kills {
		t0 := time.Now()
		srv := startServer(t, repo)
		starts = append(starts, time.Since(t0))
		stop := storm(t, srv.addr, key, cluster, fmt.Sprintf("r%d", round), 16, func(id, name string) {
			mu.Lock()
			acked[id] = name
			mu.Unlock()
		}, func(name string, code int, out map[string]any) {
			t.Errorf("POST %s: %d %v", name, code, out)
		})
		// Kill at a different moment each round: 150 ms to 1 s in.
		time.Sleep(150*time.Millisecond + time.Duration(round*379%850)*time.Millisecond)
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		stop()
		srv.cmd.Wait()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d creates were acknowledged; the storm did not run", len(acked))
	}

	srv := startServer(t, repo)
	client := &http.Client{Timeout: 10 * time.Second}
	for id, name := range acked {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.addr+"/deployments/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || out["name"] != name {
			t.Errorf("acknowledged deployment %s (%s) after restart: %d %v", id, name, resp.StatusCode, out)
		}
	}
	// git fsck on a repository at rest: the restarted server merges the
	// packs the killed ones left, and a pack removed between fsck listing
	// it and opening it reads as broken (as during git gc).
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("server after SIGTERM: %v", err)
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("fsck", "--strict", "--no-dangling")
	// Every acknowledged create is its own commit on the branch.
	log := git("log", "--format=%(trailers:key=Deployment-Id,valueonly)", "main")
	seen := map[string]int{}
	for _, l := range strings.Fields(log) {
		seen[l]++
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("deployment %s appears in %d commits, want 1", id, seen[id])
		}
	}
	slices.Sort(starts)
	t.Logf("%d acknowledged creates over %d kills; %d commits with a Deployment-Id; restart to listening: median %v, slowest %v",
		len(acked), kills, len(seen), starts[len(starts)/2].Round(time.Millisecond), starts[len(starts)-1].Round(time.Millisecond))
}

// TestSIGTERMFinishesInFlightWrites stops the server with SIGTERM during a
// write storm: it exits 0, and every create that got a 201 is committed.
func TestSIGTERMFinishesInFlightWrites(t *testing.T) {
	repo := t.TempDir() + "/repo"
	key := strings.TrimSpace(runMengi(t, "keys", "add", "--repo", repo, "--name", "Term", "--email", "term@example.com"))
	cluster := strings.TrimSpace(runMengi(t, "clusters", "add", "--repo", repo, "--name", "prod"))
	srv := startServer(t, repo)
	var mu sync.Mutex
	var acked []string
	stop := storm(t, srv.addr, key, cluster, "t", 8, func(id, _ string) {
		mu.Lock()
		acked = append(acked, id)
		mu.Unlock()
	}, nil)
	time.Sleep(500 * time.Millisecond)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := srv.cmd.Wait()
	stop()
	if err != nil {
		t.Fatalf("mengi serve after SIGTERM: %v\n%s", err, srv.logs.String())
	}
	if len(acked) == 0 {
		t.Fatal("no create was acknowledged before SIGTERM")
	}
	out, err := exec.Command("git", "-C", repo, "log", "--format=%(trailers:key=Deployment-Id,valueonly)", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	committed := map[string]bool{}
	for _, id := range strings.Fields(string(out)) {
		committed[id] = true
	}
	for _, id := range acked {
		if !committed[id] {
			t.Errorf("acknowledged create %s is not committed", id)
		}
	}
}

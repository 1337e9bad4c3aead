package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/cmd/internal/servercmd"
	"github.com/mengi-cloud/gitops/devcluster"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

func benchAgentCommand() *cli.Command {
	return &cli.Command{
		Name: "agent",
		Usage: "commit-to-running latency of one docker deployment, then the time and the agent's peak memory to bring " +
			"--deployments new deployments to running; the agent runs as its own process (`mengi agent`)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "deployments", Usage: "deployments created at once for the throughput run (0: skip it)", Value: 200},
			&cli.IntFlag{Name: "latency-runs", Usage: "sequential single deployments for the latency run (0: skip it)", Value: 20},
			&cli.IntFlag{Name: "clients", Usage: "concurrent API clients creating the --deployments", Value: 16},
			&cli.IntFlag{Name: "workers", Usage: "the agent's --workers", Value: 4},
			&cli.StringFlag{Name: "kubeconfig", Usage: "deploy to this cluster instead of starting a local one (the run's namespaces are deleted after)"},
			&cli.DurationFlag{Name: "timeout", Usage: "limit for each wait for running", Value: 10 * time.Minute},
			&cli.StringFlag{Name: "dir", Usage: "folder for the repository, the local cluster and agent.log (default: a temporary folder, removed after)"},
			&cli.StringFlag{Name: "results", Usage: "append the result line to this file"},
			&cli.StringSliceFlag{Name: "agent-arg", Usage: "extra argument for `mengi agent` (repeat)"},
		},
		Action: benchAgent,
	}
}

func benchAgent(c *cli.Context) (err error) {
	ctx := c.Context
	out := c.App.Writer
	dir := c.String("dir")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mengi-bench-agent-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	load0 := loadAverage()

	kubeconfig := c.String("kubeconfig")
	if kubeconfig == "" {
		fmt.Fprintln(c.App.ErrWriter, "starting the local Kubernetes cluster...")
		// kwok's fake nodes take 110 pods each: room for the run's pods.
		nodes := max(2, (c.Int("deployments")+c.Int("latency-runs")+40)/100+1)
		cl, err := devcluster.Start(ctx, devcluster.Options{StateDir: filepath.Join(dir, "cluster"), Logger: quiet, Nodes: nodes})
		if err != nil {
			return fmt.Errorf("local cluster: %w", err)
		}
		defer cl.Stop()
		kubeconfig = cl.KubeconfigPath()
	} else if kubeconfig, err = filepath.Abs(kubeconfig); err != nil {
		return err
	}

	repo := filepath.Join(dir, "repo")
	repos, err := registry.OpenRepos(ctx, repo, "", quiet)
	if err != nil {
		return err
	}
	defer repos.Close()
	store := repos.Deployments
	key, _, err := repos.Registry.AddKey(ctx, "Bench", "bench@mengi.local")
	if err != nil {
		return err
	}
	cluster, err := repos.Registry.AddCluster(ctx, registry.ClusterSpec{Name: "bench", Kubeconfig: kubeconfig, Domain: "bench.test", Provider: "local"})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(store, repos.Registry, api.Options{Logger: quiet})}
	go srv.Serve(ln)
	defer srv.Close()
	client := &benchClient{url: "http://" + ln.Addr().String(), key: key, http: &http.Client{Timeout: 30 * time.Second}}

	// Names unique to this run, so a real cluster's other namespaces are
	// never touched.
	var rnd [3]byte
	rand.Read(rnd[:])
	prefix := "b" + hex.EncodeToString(rnd[:])
	var names []string
	defer func() {
		if c.String("kubeconfig") != "" && len(names) > 0 {
			if cerr := deleteNamespaces(kubeconfig, names); cerr != nil {
				fmt.Fprintln(c.App.ErrWriter, "cleanup:", cerr)
			}
		}
	}()

	agent, err := startBenchAgent(repo, filepath.Join(dir, "agent.log"), c.Int("workers"), c.StringSlice("agent-arg"))
	if err != nil {
		return err
	}
	defer agent.stop()

	spec := func(name string) map[string]any {
		names = append(names, name)
		return map[string]any{"cluster_id": cluster.ID, "name": name, "app_type": "web_app", "docker_image": "nginx:1.27",
			"replicas": 1, "container_port": 80, "cpu_request": 0.05, "memory_request_mb": 32}
	}
	timeout := c.Duration("timeout")

	// Warm-up: the agent's first deployment pays for its start (discovery).
	t0 := time.Now()
	id, err := client.create(ctx, spec(prefix+"-warm"))
	if err != nil {
		return err
	}
	if err := waitRunning(ctx, store, []string{id}, timeout); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	first := time.Since(t0)

	// (a) Latency: one deployment at a time, from the acknowledged commit
	// (the 201) to status running in Git.
	var lat []time.Duration
	for i := range c.Int("latency-runs") {
		id, err := client.create(ctx, spec(fmt.Sprintf("%s-lat-%02d", prefix, i)))
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := waitRunning(ctx, store, []string{id}, timeout); err != nil {
			return fmt.Errorf("latency run %d: %w", i, err)
		}
		lat = append(lat, time.Since(t0))
	}

	// (b) Throughput: N deployments created at once.
	n := c.Int("deployments")
	var loadTook, acked time.Duration
	if n > 0 {
		specs := make([]map[string]any, n)
		for i := range specs {
			specs[i] = spec(fmt.Sprintf("%s-load-%03d", prefix, i))
		}
		ids := make([]string, n)
		errs := make([]error, n)
		t0 := time.Now()
		var wg sync.WaitGroup
		next := make(chan int)
		for range max(1, c.Int("clients")) {
			wg.Go(func() {
				for i := range next {
					ids[i], errs[i] = client.create(ctx, specs[i])
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		acked = time.Since(t0)
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if err := waitRunning(ctx, store, ids, timeout); err != nil {
			return fmt.Errorf("%d deployments: %w", n, err)
		}
		loadTook = time.Since(t0)
	}

	peak, cpu := agent.peakRSSMB(), agent.cpuSeconds()
	load1 := loadAverage()
	line := fmt.Sprintf("agent workers=%d first_deploy_s=%.2f latency_runs=%d latency_p50_s=%.2f latency_p95_s=%.2f latency_max_s=%.2f "+
		"deployments=%d deploy_acked_s=%.1f deploy%d_s=%.1f agent_peak_rss_mb=%d agent_cpu_s=%.1f store_lags=%d loadavg_before=%s loadavg_after=%s",
		c.Int("workers"), first.Seconds(), len(lat), bench.Percentile(lat, 0.50).Seconds(), bench.Percentile(lat, 0.95).Seconds(), bench.Percentile(lat, 1).Seconds(),
		n, acked.Seconds(), n, loadTook.Seconds(), peak, cpu, storeLags, load0, load1)
	fmt.Fprintln(out, line)
	return servercmd.AppendResult(c.String("results"), line)
}

// storeLags counts the times waitRunning found the store behind the
// branch on disk and read the files with git instead (see waitRunning).
var storeLags int

// waitRunning waits until every deployment in ids is running in the
// store's view of the branch (the agent's status commits are taken in as
// they land); a deployment that fails or errs ends the wait.
//
// The store sometimes fails to take in a commit of the other process
// ("reading external change failed ... not found") and then waits for the
// branch to move again; when it stays behind the branch for 3 s, the
// deployments still waited for are read with the git CLI instead.
func waitRunning(ctx context.Context, store *gitstore.Store, ids []string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	left := slices.Clone(ids)
	behind := 0
	for {
		changed := store.Changed()
		var problem error
		paths := map[string]string{}
		store.Read(func(v *gitstore.View) {
			left = slices.DeleteFunc(left, func(id string) bool {
				r := v.Deployment(id)
				if r == nil {
					return false
				}
				paths[id] = r.Path
				switch r.Phase() {
				case schema.PhaseRunning:
					return true
				case schema.PhaseFailed, schema.PhaseError:
					msg := fmt.Sprint(r.Err())
					if d := r.Deployment(); d != nil && d.Status != nil {
						msg = d.Status.ErrorMessage
					}
					problem = fmt.Errorf("%s: %s: %s", r.Path, r.Phase(), msg)
				}
				return false
			})
		})
		if problem != nil {
			return problem
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-changed:
			behind = 0
		case <-tick.C:
			out, err := exec.Command("git", "-C", store.Dir(), "rev-parse", "main").Output()
			if err != nil || strings.TrimSpace(string(out)) == store.Head().String() {
				behind = 0
				continue
			}
			if behind++; behind < 3 {
				continue
			}
			storeLags++
			left = slices.DeleteFunc(left, func(id string) bool {
				data, err := exec.Command("git", "-C", store.Dir(), "show", "main:"+paths[id]).Output()
				if err != nil {
					return false
				}
				d, errs := schema.ParseFile(data)
				return errs == nil && d.Phase() == schema.PhaseRunning
			})
			if len(left) == 0 {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("%d of %d deployments not running after %v", len(left), len(ids), timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// benchClient creates deployments through the API over loopback HTTP.
type benchClient struct {
	url, key string
	http     *http.Client
}

func (b *benchClient) create(ctx context.Context, body map[string]any) (string, error) {
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/deployments", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+b.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &out) != nil {
		return "", fmt.Errorf("POST %v: %d %s", body["name"], resp.StatusCode, raw)
	}
	return out.ID, nil
}

// benchAgentProc is `mengi agent` in its own process, so its memory is its
// own.
type benchAgentProc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func startBenchAgent(repo, logPath string, workers int, extra []string) (*benchAgentProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"agent", "--repo", repo, "--workers", strconv.Itoa(workers),
		"--chart-cache", filepath.Join(filepath.Dir(repo), "charts")}, extra...)
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &benchAgentProc{cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// procStatus reads a field of /proc/<pid>/status in kB.
func (p *benchAgentProc) procStatus(field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb
		}
	}
	return 0
}

// peakRSSMB is the agent's peak resident set size (VmHWM) so far, in MiB.
func (p *benchAgentProc) peakRSSMB() int { return p.procStatus("VmHWM") / 1024 }

// cpuSeconds is the CPU time the agent used so far (user + system).
func (p *benchAgentProc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// stop ends the agent: SIGTERM, then SIGKILL after 30 s.
func (p *benchAgentProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], "/")
}

// deleteNamespaces removes the namespaces of the run's deployments from a
// cluster given with --kubeconfig (Helm's records live there too).
func deleteNamespaces(kubeconfig string, names []string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		err := kube.CoreV1().Namespaces().Delete(context.Background(), render.Namespace(name), metav1.DeleteOptions{})
		if err != nil && !strings.Contains(err.Error(), "not found") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

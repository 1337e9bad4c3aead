package servercmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/bench"
)

func benchRequestsCommand() *cli.Command {
	return &cli.Command{
		Name:  "requests",
		Usage: "peak memory and time of the costliest requests the API accepts (and of the largest it refuses), beside an ordinary create",
		Description: `Seeds a repository with --deployments deployments, serves the API in this
process on loopback, and sends one request of each kind below, one at a time:
an ordinary create (the reference), then the largest and most node-heavy
bodies the limits let through (custom_values_yaml of 256 KiB as one flow list
of 130,000 items, as 87,000 empty maps, as one string; 256 environment
variables of 3.9 KB; the most volumes), then bodies that are refused (1 MiB of
YAML, 1 MiB of config). Before each the heap is collected and the peak
resident memory reset; each prints status, time and how far the peak rose
above the resident memory before it. The last line is
requests: worst_accepted=<kind> worst_accepted_peak_mb=<n> reference_peak_mb=<n> ...`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "deployments", Usage: "deployments in the repository before the run", Value: 10000},
			&cli.IntFlag{Name: "clusters", Usage: "clusters they are spread over", Value: 100},
			&cli.StringFlag{Name: "results", Usage: "append the result line to this file"},
		},
		Action: benchRequests,
	}
}

// costlyRequest is one body of bench requests.
type costlyRequest struct {
	kind string
	body func(base map[string]any) map[string]any
}

func costlyRequests() []costlyRequest {
	with := func(k string, v any) func(map[string]any) map[string]any {
		return func(b map[string]any) map[string]any { b[k] = v; return b }
	}
	repeat := func(item string, n int) string { return strings.TrimSuffix(strings.Repeat(item+",", n), ",") }
	envs := make([]map[string]any, 256)
	for i := range envs {
		envs[i] = map[string]any{"name": "E" + strconv.Itoa(i), "value": strings.Repeat("v", 3900)}
	}
	volumes := make([]map[string]any, 16)
	for i := range volumes {
		volumes[i] = map[string]any{"path": "/vol/" + strconv.Itoa(i), "sizeGb": 1, "purpose": strings.Repeat("p", 200)}
	}
	return []costlyRequest{
		{"ordinary", func(b map[string]any) map[string]any { return b }},
		{"values_flow_list_256k", with("custom_values_yaml", "a: ["+repeat("1", 130000)+"]\n")},
		{"values_empty_maps_256k", with("custom_values_yaml", "a: ["+repeat("{}", 87000)+"]\n")},
		{"values_string_256k", with("custom_values_yaml", "a: "+strings.Repeat("x", 262000)+"\n")},
		{"env_256x3900", with("environment_variables", envs)},
		{"volumes_16", with("volumes", volumes)},
		{"refused_values_1m", with("custom_values_yaml", "a: ["+repeat("1", 480000)+"]\n")},
		{"refused_config_1m", with("config", func() map[string]any {
			m := map[string]any{}
			for i := range 60000 {
				m["k"+strconv.Itoa(i)] = i
			}
			return m
		}())},
	}
}

func benchRequests(c *cli.Context) error {
	out := c.App.Writer
	dir, cleanup, err := benchDir("")
	if err != nil {
		return err
	}
	defer cleanup()
	seed, err := bench.SeedRepo(c.Context, filepath.Join(dir, "repo"), c.Int("deployments"), c.Int("clusters"))
	if err != nil {
		return err
	}
	repos, _, err := OpenRepos(c.Context, seed.Dir, "", nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer repos.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(repos.Deployments, repos.Registry, api.Options{Logger: slog.New(slog.DiscardHandler)})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	defer func() { srv.Close(); <-served }()
	url := "http://" + ln.Addr().String() + "/deployments"
	client := &http.Client{Timeout: time.Minute}

	var refPeak, worstPeak float64
	worst := ""
	for i, req := range costlyRequests() {
		base := map[string]any{"cluster_id": seed.ClusterIDs[0], "name": "costly-" + strconv.Itoa(i), "app_type": "web_app",
			"deployment_type": "docker", "docker_image": "nginx:1.27"}
		body, err := json.Marshal(req.body(base))
		if err != nil {
			return err
		}
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		before := float64(statusKB("VmRSS")) / 1024
		t0 := time.Now()
		code, detail, err := postJSON(client, url, seed.Key, body)
		took := time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s: %w", req.kind, err)
		}
		peak := float64(statusKB("VmHWM"))/1024 - before
		fmt.Fprintf(out, "request kind=%s bytes=%d status=%d took_ms=%.0f peak_rise_mb=%.1f %s\n", req.kind, len(body), code, ms(took), peak, detail)
		switch {
		case code >= 500:
			return fmt.Errorf("%s: status %d: %s", req.kind, code, detail)
		case req.kind == "ordinary":
			if code != http.StatusCreated {
				return fmt.Errorf("the ordinary create got %d: %s", code, detail)
			}
			refPeak = peak
		case code == http.StatusCreated && peak > worstPeak:
			worst, worstPeak = req.kind, peak
		}
	}
	line := fmt.Sprintf("requests: deployments=%d worst_accepted=%s worst_accepted_peak_mb=%.1f reference_peak_mb=%.1f", seed.Deployments, worst, worstPeak, refPeak)
	fmt.Fprintln(out, line)
	return AppendResult(c.String("results"), line)
}

// postJSON posts body with key and returns the status and, for an error,
// the start of the answer's detail.
func postJSON(client *http.Client, url, key string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode < 300 {
		return resp.StatusCode, "", nil
	}
	return resp.StatusCode, "detail=" + strconv.Quote(string(b[:min(len(b), 160)])), nil
}

// statusKB reads a "<field>: N kB" line of /proc/self/status (0 when
// there is none).
func statusKB(field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb int
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, field+": %d kB", &kb); err == nil {
			return kb
		}
	}
	return 0
}

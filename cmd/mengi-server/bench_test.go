package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBenchRequests runs `bench requests` on a small repository: every
// costly body is answered without a 5xx, the accepted ones with 201 and
// the oversized ones with 422, and the result line names the worst
// accepted request with its peak.
func TestBenchRequests(t *testing.T) {
	out := run(t, "bench", "requests", "--deployments", "100", "--clusters", "2")
	status := regexp.MustCompile(`(?m)^request kind=(\S+) bytes=\d+ status=(\d+)`)
	got := map[string]int{}
	for _, m := range status.FindAllStringSubmatch(out, -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	for kind, want := range map[string]int{"ordinary": 201, "values_flow_list_256k": 201, "values_empty_maps_256k": 201,
		"values_string_256k": 201, "env_256x3900": 201, "volumes_16": 201, "refused_values_1m": 422, "refused_config_1m": 422} {
		if got[kind] != want {
			t.Errorf("%s: status %d, want %d\n%s", kind, got[kind], want, out)
		}
	}
	last := out[strings.LastIndex(out, "\n")+1:]
	m := regexp.MustCompile(`^requests: deployments=100 worst_accepted=(\S+) worst_accepted_peak_mb=([\d.]+) reference_peak_mb=([\d.]+)$`).FindStringSubmatch(last)
	if m == nil || m[1] == "" {
		t.Fatalf("result line %q", last)
	}
	if peak, _ := strconv.ParseFloat(m[2], 64); peak <= 0 {
		t.Errorf("worst accepted peak %v MB: the measurement saw nothing", peak)
	}
}

// TestBenchGit runs `bench git` briefly: the engineer's rounds push while
// the writers write, every push lands (the bench fails otherwise), and the
// result line carries the figures BENCHMARKS.md records.
func TestBenchGit(t *testing.T) {
	out := run(t, "bench", "git", "--deployments", "200", "--clusters", "4", "--writers", "8", "--duration", "6s", "--interval", "2s")
	rounds := regexp.MustCompile(`(?m)^round t_s=\d+ fetch_ms=\d+ push_land_ms=\d+ attempts=(\d+) packs=(\d+)`).FindAllStringSubmatch(out, -1)
	if len(rounds) < 2 {
		t.Fatalf("%d rounds under load, want at least 2:\n%s", len(rounds), out)
	}
	last := out[strings.LastIndex(out, "\n")+1:]
	m := regexp.MustCompile(`^git: writes_per_s=(\d+) push_land_p50_ms=\d+ push_land_max_ms=\d+ push_land_ref_ms=\d+ attempts_max=(\d+) .* packs_end=(\d+) pack_mb_end=\d+ rounds=(\d+)$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("result line %q", last)
	}
	if writes, _ := strconv.Atoi(m[1]); writes == 0 {
		t.Errorf("no writes during the run: %s", last)
	}
	if packs, _ := strconv.Atoi(m[3]); packs == 0 {
		t.Errorf("no packs counted: %s", last)
	}
}

package devcluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mengi-cloud/gitops/devcluster"
)

// The numbers in BENCHMARKS.md:
//
//	go test -run '^$' -bench . -benchtime 3x ./devcluster/

// BenchmarkStartStop starts a fresh throwaway cluster (new PKI, empty etcd)
// and stops it; s/start is Start until the cluster can run workloads.
func BenchmarkStartStop(b *testing.B) {
	var start, stop time.Duration
	for range b.N {
		t0 := time.Now()
		c, err := devcluster.Start(context.Background(), devcluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
		start += t1.Sub(t0)
		stop += time.Since(t1)
	}
	b.ReportMetric(start.Seconds()/float64(b.N), "s/start")
	b.ReportMetric(stop.Seconds()/float64(b.N), "s/stop")
}

// BenchmarkMemory reports the resident memory of each component with the
// workload of TestServerSideApply running, and the time from apply to
// Available.
func BenchmarkMemory(b *testing.B) {
	rss := map[string]float64{}
	var ready time.Duration
	for range b.N {
		c, err := devcluster.Start(context.Background(), devcluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err = cs.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{})
		check(b, "namespace", err)
		t0 := time.Now()
		applyWebApp(ctx, b, cs, "bench")
		waitPVCBound(ctx, b, cs, "bench", "web-data")
		waitDeploymentAvailable(ctx, b, cs, "bench", "web", 2)
		ready += time.Since(t0)
		cancel()
		time.Sleep(5 * time.Second) // let the controllers settle
		for _, p := range c.Processes() {
			rss[p.Name] += rssMiB(b, p.PID)
		}
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
	}
	total := 0.0
	for name, v := range rss {
		b.ReportMetric(v/float64(b.N), "MiB-"+name)
		total += v
	}
	b.ReportMetric(total/float64(b.N), "MiB-total")
	b.ReportMetric(ready.Seconds()/float64(b.N), "s/apply-to-available")
}

// rssMiB returns VmRSS of pid in MiB.
func rssMiB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadResult is what a load run measured.
type LoadResult struct {
	Requests int           // acknowledged requests
	Errors   int           // requests that did not get the expected status
	Elapsed  time.Duration // wall time of the run
	P50, P99 time.Duration // latency percentiles of acknowledged requests
}

// PerSecond is the acknowledged request rate.
func (r LoadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// String formats the result as `name=value` pairs.
func (r LoadResult) String() string {
	return fmt.Sprintf("creates_per_s=%.1f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d",
		r.PerSecond(), ms(r.P50), ms(r.P99), r.Requests, r.Errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// CreateLoad posts new deployments to baseURL from clients concurrent
// clients until duration has passed (or max requests were sent, when max
// > 0). Every request is a closed loop: a client sends its next create when
// the previous one was answered.
func CreateLoad(ctx context.Context, baseURL, key string, clusterIDs []string, clients int, duration time.Duration, max int) LoadResult {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		sent      atomic.Int64
		wg        sync.WaitGroup
	)
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if n := sent.Add(1); max > 0 && n > int64(max) {
					return
				}
				body := fmt.Sprintf(`{"cluster_id":%q,"name":"load-%s-%d-%d","app_type":"web_app","docker_image":"nginx:1.27","replicas":1}`,
					clusterIDs[(c+i)%len(clusterIDs)], run, c, i)
				req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, baseURL+"/deployments", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				lat := time.Since(t0)
				ok := err == nil && resp.StatusCode == http.StatusCreated
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if ok {
					latencies = append(latencies, lat)
				} else {
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res := LoadResult{Requests: len(latencies), Errors: errs, Elapsed: time.Since(start)}
	res.P50, res.P99 = Percentile(latencies, 0.50), Percentile(latencies, 0.99)
	return res
}

// Percentile returns the p-th quantile of d by nearest rank (the smallest
// value with at least p of the values at or below it); 0 for none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(float64(len(s))*p)) - 1
	return s[max(0, min(i, len(s)-1))]
}

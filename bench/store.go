package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
)

// StoreResult is what a store load measured.
type StoreResult struct {
	Writes   int           // acknowledged writes
	Errors   int           // writes that failed
	Elapsed  time.Duration // wall time of the run
	P50, P99 time.Duration // latency of acknowledged writes (Store.Apply)
}

// PerSecond is the acknowledged write rate.
func (r StoreResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Writes) / r.Elapsed.Seconds()
}

// Line is the benchmark's result line, with the process's peak RSS.
func (r StoreResult) Line(rssMB int) string {
	return fmt.Sprintf("writes_per_s=%.1f p50_ms=%.2f p99_ms=%.2f rss_mb=%d", r.PerSecond(), ms(r.P50), ms(r.P99), rssMB)
}

// errNameTaken and errMissing fail a write whose check does not hold, as
// the API's would.
var (
	errNameTaken = errors.New("a deployment with this name already exists on the cluster")
	errMissing   = errors.New("no such deployment")
)

// AckLogHeader is the first line of an ack log; every other line is one
// acknowledged write:
//
//	<start> <done> <writer> <write> <commit> <blob> <path>
//
// start and done are positions on one clock shared by all writers, taken
// when the write was sent and when it was acknowledged: a write whose done
// is below another's start was acknowledged before the other was sent, so
// its commit must come first in the history.
const AckLogHeader = "# start done writer write commit blob path"

// StoreLoad runs wl's writers against store, each a closed loop of
// Store.Apply calls (a create checks the cluster exists and the name is
// free, an update that the deployment is where it was), until duration has
// passed or ctx ends. ackLog, when not nil, gets one line per acknowledged
// write as soon as it is acknowledged (one write call each, so a process
// killed right after still leaves it in the file; calls are serialised).
//
// With rate > 0 the load is open: the writers together send rate writes
// per second on a fixed schedule (each writer one every Writers/rate
// seconds, still waiting for its previous answer), and a write's latency
// counts from when it was due, so a stall is not hidden by writes that
// were sent late. With rate 0 every writer sends its next write as soon as
// the previous one is answered (the store's highest throughput).
func StoreLoad(ctx context.Context, store *gitstore.Store, wl *Workload, duration time.Duration, rate float64, ackLog io.Writer) (StoreResult, error) {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var (
		clock     atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		firstErr  error
		wg        sync.WaitGroup
	)
	if ackLog != nil {
		if _, err := io.WriteString(ackLog, AckLogHeader+"\n"); err != nil {
			return StoreResult{}, fmt.Errorf("ack log: %w", err)
		}
	}
	start := time.Now()
	for w := range wl.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var every time.Duration
			if rate > 0 {
				every = time.Duration(float64(wl.Writers) / rate * float64(time.Second))
			}
			for i := 0; ctx.Err() == nil; i++ {
				due := time.Now()
				if every > 0 {
					due = start.Add(every*time.Duration(i) + every*time.Duration(w)/time.Duration(wl.Writers))
					if wait := time.Until(due); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
							return
						}
					}
				}
				wr, err := wl.Write(w, i)
				if err != nil {
					mu.Lock()
					errs, firstErr = errs+1, err
					mu.Unlock()
					return
				}
				sent := clock.Add(1)
				if every == 0 {
					due = time.Now()
				}
				res, err := store.Apply(context.WithoutCancel(ctx), mutation(wr))
				lat := time.Since(due)
				done := clock.Add(1)
				mu.Lock()
				if err == nil && ackLog != nil {
					line := fmt.Sprintf("%d %d %d %d %s %s %s\n", sent, done, w, i, res.Commit, res.Records[0].Blob(), wr.Path)
					if _, werr := io.WriteString(ackLog, line); werr != nil {
						err = fmt.Errorf("ack log: %w", werr)
					}
				}
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = fmt.Errorf("writer %d write %d: %w", w, i, err)
					}
				} else {
					latencies = append(latencies, lat)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res := StoreResult{Writes: len(latencies), Errors: errs, Elapsed: time.Since(start)}
	res.P50, res.P99 = Percentile(latencies, 0.50), Percentile(latencies, 0.99)
	return res, firstErr
}

// mutation is the store write of wr, with the checks the API makes.
func mutation(wr *Write) gitstore.Mutation {
	return func(v *gitstore.View) (*gitstore.Commit, error) {
		d := wr.Deployment
		if wr.Create {
			if v.Cluster(d.Spec.ClusterID) == nil {
				return nil, fmt.Errorf("cluster %s not found", d.Spec.ClusterID)
			}
			if v.DeploymentByName(d.Spec.ClusterID, d.Spec.Name) != nil {
				return nil, errNameTaken
			}
		} else if r := v.Deployment(d.Metadata.ID); r == nil || r.Path != wr.Path {
			return nil, errMissing
		}
		return &gitstore.Commit{Author: wr.Author, Message: wr.Message,
			Changes: []gitstore.Change{{Path: wr.Path, Content: wr.Content, Value: d}}}, nil
	}
}

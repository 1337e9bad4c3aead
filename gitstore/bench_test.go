package gitstore_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/bench"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// benchRoot holds what the benchmarks seed; TestMain removes it.
var benchRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gitstore-bench-")
	if err != nil {
		panic(err)
	}
	benchRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	gitstore.RemoveTestRepos()
	os.Exit(code)
}

// seeded50k is one repository with 50,000 deployments, seeded once per test
// binary for the read benchmarks.
var seeded50k = sync.OnceValues(func() (*bench.Seed, error) {
	return bench.SeedRepo(context.Background(), benchRoot+"/repo", 50000, 100)
})

func openSeeded(b *testing.B) (*bench.Seed, *gitstore.Store) {
	b.Helper()
	seed, err := seeded50k()
	if err != nil {
		b.Fatal(err)
	}
	s, err := gitstore.Open(seed.Dir, gitstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return seed, s
}

// BenchmarkOpen50k measures opening a repository of 50,000 deployments:
// reading and parsing every record into the index.
func BenchmarkOpen50k(b *testing.B) {
	seed, err := seeded50k()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := gitstore.Open(seed.Dir, gitstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// timed runs op b.N times, timing each run, and reports the p99 besides
// the mean (the targets are about the p99).
func timed(b *testing.B, op func(i int)) {
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		t0 := time.Now()
		op(i)
		lat = append(lat, time.Since(t0))
		i++
	}
	b.ReportMetric(float64(bench.Percentile(lat, 0.99).Nanoseconds()), "p99-ns")
}

// BenchmarkGetByID50k is a get by id at 50,000 deployments.
func BenchmarkGetByID50k(b *testing.B) {
	seed, s := openSeeded(b)
	timed(b, func(i int) {
		id := seed.ID((i * 7919) % seed.Deployments)
		var r *gitstore.Record
		s.Read(func(v *gitstore.View) { r = v.Deployment(id) })
		if r == nil || r.Deployment() == nil {
			b.Fatalf("deployment %s not found", id)
		}
	})
}

// BenchmarkList100At50k lists 100 deployments from the middle of 50,000.
func BenchmarkList100At50k(b *testing.B) {
	seed, s := openSeeded(b)
	timed(b, func(int) {
		got := s.DeploymentsOf(seed.UserID, 25000, 100, nil)
		if len(got) != 100 {
			b.Fatalf("listed %d", len(got))
		}
		for _, r := range got {
			if r.Deployment() == nil {
				b.Fatalf("%s: no deployment", r.Path)
			}
		}
	})
}

// BenchmarkDiffOneFile50k diffs two heads that differ in one file at 50,000
// deployments.
func BenchmarkDiffOneFile50k(b *testing.B) {
	seed, s := openSeeded(b)
	before := s.Head()
	var rec *gitstore.Record
	s.Read(func(v *gitstore.View) { rec = v.Deployment(seed.ID(123)) })
	d := *rec.Deployment()
	replicas := int64(5)
	d.Spec.Replicas = &replicas
	res := writeFile(b, s, rec.Path, encode(b, &d), "bench\n")
	b.Cleanup(func() { restore(b, s, rec) })
	timed(b, func(int) {
		changes, err := s.Diff(before, res.Commit)
		if err != nil || len(changes) != 1 {
			b.Fatalf("diff: %v %v", changes, err)
		}
	})
}

// restore writes rec's content back to its file.
func restore(b *testing.B, s *gitstore.Store, rec *gitstore.Record) {
	content, err := s.ReadBlob(rec.Blob())
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, s, rec.Path, content, "restore\n")
}

// writeFile commits content to the file at path.
func writeFile(b *testing.B, s *gitstore.Store, path string, content []byte, message string) *gitstore.Result {
	res, err := s.Apply(context.Background(), func(v *gitstore.View) (*gitstore.Commit, error) {
		return &gitstore.Commit{Author: gitstore.Signature{Name: "B", Email: "b@example.com"}, Message: message,
			Changes: []gitstore.Change{{Path: path, Content: content}}}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func encode(b *testing.B, d *schema.Deployment) []byte {
	content, err := schema.EncodeFile(d)
	if err != nil {
		b.Fatal(err)
	}
	return content
}

// BenchmarkIndexMemory50k measures the memory a started store holds at
// 50,000 deployments (index, history, caches), as live heap bytes per
// deployment after a garbage collection: from every file parsed (a first
// start) and from the index snapshot and history file (a restart).
func BenchmarkIndexMemory50k(b *testing.B) {
	seed, err := seeded50k()
	if err != nil {
		b.Fatal(err)
	}
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	open := func(first bool) float64 {
		if first {
			os.Remove(seed.Dir + "/mengi-index")
			os.Remove(seed.Dir + "/mengi-history")
		}
		before := live()
		s, err := gitstore.Open(seed.Dir, gitstore.Options{CompactAfter: -1})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.HistoryReady(context.Background()); err != nil {
			b.Fatal(err)
		}
		held := float64(live()-before) / float64(seed.Deployments)
		s.Close()
		return held
	}
	var first, restart float64
	for b.Loop() {
		first, restart = open(true), open(false)
	}
	b.ReportMetric(first, "B/deployment-first-start")
	b.ReportMetric(restart, "B/deployment-restart")
}

// BenchmarkReadOtherStoresWrite50k: a store reads a blob another store on
// the same repository (another process, as the agent beside the API) just
// wrote in a new pack, at 50,000 deployments.
func BenchmarkReadOtherStoresWrite50k(b *testing.B) {
	seed, writer := openSeeded(b)
	reader, err := gitstore.Open(seed.Dir, gitstore.Options{CompactAfter: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reader.Close() })
	var rec *gitstore.Record
	writer.Read(func(v *gitstore.View) { rec = v.Deployment(seed.ID(123)) })
	d := *rec.Deployment()
	b.Cleanup(func() { restore(b, writer, rec) })
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		img := fmt.Sprintf("nginx:1.%d", i)
		d.Spec.DockerImage = &img
		res := writeFile(b, writer, rec.Path, encode(b, &d), "bench\n")
		b.StartTimer()
		if _, err := reader.ReadBlob(res.Records[0].Blob()); err != nil {
			b.Fatal(err)
		}
	}
}

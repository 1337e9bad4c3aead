// Package bench measures Mengi GitOps under load: it seeds repositories with
// many deployments (through `git fast-import`) and drives the real API over
// loopback HTTP, reporting throughput and latency percentiles. `mengi bench`
// and the Go benchmarks use it; BENCHMARKS.md records its results.
package bench

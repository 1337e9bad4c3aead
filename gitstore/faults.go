package gitstore

import (
	"log/slog"
	"sync"
	"time"
)

// faults logs the failures of the store's own work (committing batches,
// merging packs, saving the history file, making temporary files) once
// per kind while they last, and once more when that kind works again. A
// full disk fails every attempt until an operator frees space: a line per
// attempt (per batch, per request) would bury the log and cost as much as
// the work itself.
//
// A disk that is nearly full lets some attempts through (small batches
// fit in the space failed ones gave back): a kind counts as working again
// only once it has not failed for faultSettle, so such a disk is not
// logged as full and free again every few milliseconds.
type faults struct {
	log    *slog.Logger
	settle time.Duration
	mu     sync.Mutex
	open   map[faultKind]*fault
}

// faultKind names a kind of failure; each is logged once while it lasts.
type faultKind string

const (
	faultCommitDiskFull faultKind = "commit: disk full"
	faultMergeDiskFull  faultKind = "merge: disk full"
	faultRollupDiskFull faultKind = "roll-up: disk full"
	faultHistorySave    faultKind = "history file"
	faultTempFiles      faultKind = "temporary files"
)

// faultSettle is how long a kind of failure must not recur, after an
// attempt worked, before it is logged as over.
const faultSettle = 5 * time.Second

type fault struct {
	since  time.Time
	times  int       // failed attempts
	worked time.Time // since when attempts work; zero while they fail
}

// newFaults logs to log; a kind of failure is over once it has not
// recurred for settle.
func newFaults(log *slog.Logger, settle time.Duration) *faults {
	return &faults{log: log, settle: settle, open: map[faultKind]*fault{}}
}

// failed notes a failure of kind. The first since kind last worked is
// logged at warn level with msg, err and attrs; later ones are counted.
// It reports whether it logged.
func (f *faults) failed(kind faultKind, msg string, err error, attrs ...any) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.open[kind]; o != nil {
		o.times++
		o.worked = time.Time{}
		return false
	}
	f.open[kind] = &fault{since: time.Now(), times: 1}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	f.log.Warn(msg, attrs...)
	return true
}

// ok notes that kind worked. When it had been failing and does not fail
// again for the settling time, that is logged at info level with msg,
// how long it lasted and how many attempts failed.
func (f *faults) ok(kind faultKind, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.open[kind]
	if o == nil || !o.worked.IsZero() {
		return
	}
	o.worked = time.Now()
	time.AfterFunc(f.settle, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.open[kind] != o || o.worked.IsZero() || time.Since(o.worked) < f.settle {
			return // failed again meanwhile (a later ok set its own timer)
		}
		delete(f.open, kind)
		f.log.Info(msg, "failed", o.times, "for", o.worked.Sub(o.since).Round(time.Millisecond))
	})
}

// failing reports whether kind is failing now (or worked again too
// recently to call it over).
func (f *faults) failing(kind faultKind) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[kind] != nil
}

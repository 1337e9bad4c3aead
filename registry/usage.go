package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// usageFileName is where a registry remembers when each key was last used,
// in its git directory.
const usageFileName = "mengi-key-usage"

// usageSaveEvery is how stale the saved file may get while keys are used.
const usageSaveEvery = 5 * time.Minute

// usage remembers when each key was last used, to the minute. Not in Git:
// a commit per request would bury the registry's history. It is a cache
// saved in the git directory every few minutes and at close, so a crash
// loses at most the last minutes, and each process knows the uses it
// served.
type usage struct {
	mu    sync.Mutex
	path  string
	last  map[string]time.Time // key SHA-256 → last use
	saved time.Time
	dirty bool
}

// loadUsage reads the usage file of the registry at gitDir; a missing or
// damaged file starts empty.
func loadUsage(gitDir string) *usage {
	u := &usage{path: filepath.Join(gitDir, usageFileName), last: map[string]time.Time{}, saved: time.Now()}
	if b, err := os.ReadFile(u.path); err == nil {
		json.Unmarshal(b, &u.last)
	}
	return u
}

// record notes a use of the key with this hash at now.
func (u *usage) record(sha string, now time.Time) error {
	now = now.UTC().Truncate(time.Minute)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last[sha].Equal(now) {
		return nil
	}
	u.last[sha], u.dirty = now, true
	if now.Sub(u.saved) < usageSaveEvery {
		return nil
	}
	return u.saveLocked(now)
}

// lastUsed is when the key with this hash was last used, nil when never.
func (u *usage) lastUsed(sha string) *time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.last[sha]
	if !ok {
		return nil
	}
	return &t
}

// save writes the file when something changed since it was written.
func (u *usage) save() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.saveLocked(time.Now())
}

func (u *usage) saveLocked(now time.Time) error {
	if !u.dirty {
		return nil
	}
	b, err := json.Marshal(u.last)
	if err != nil {
		return err
	}
	tmp := u.path + ".tmp"
	err = os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, u.path)
	}
	if err != nil {
		// Tried: the next attempt comes usageSaveEvery later, not at
		// every request (on a full disk each would fail and be logged).
		os.Remove(tmp)
		u.saved = now
		return fmt.Errorf("save key usage: %w", err)
	}
	u.saved, u.dirty = now, false
	return nil
}

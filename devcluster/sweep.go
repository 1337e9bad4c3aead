package devcluster

import (
	"os"
	"path/filepath"
	"time"
)

// tempPrefix names the temporary state folders of throwaway clusters.
const tempPrefix = "mengi-devcluster-"

// sweepStale removes the temporary state folders of clusters whose process
// died without Stop (SIGKILL, a test timeout): their lock is free and older
// than a minute. Folders that hold only kept logs have no lock and stay.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(filepath.Join(d, lockFile))
		if err != nil || time.Since(fi.ModTime()) < time.Minute || lockHeld(d) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// chartCache keeps fetched charts on disk, by content:
//
//	<CacheDir>/charts/sha256/<hex>.tgz   a chart archive, named by its SHA-256
//	<CacheDir>/charts/refs/<hex>.json    {repo, name, version, digest}: which
//	                                     archive a chart version is; <hex> is
//	                                     the SHA-256 of "repo name version"
//
// Each file is written to a temporary name and renamed into place, so
// concurrent processes (the agent, `mengi render`) share a cache safely: a
// reader sees a whole file or none. An archive is checked against its
// digest whenever it is read; a damaged one is deleted and fetched again.
type chartCache struct {
	dir string // <CacheDir>/charts
}

type cacheRef struct {
	chartKey
	Digest string `json:"digest"`
}

func openCache(dir string) (*chartCache, error) {
	c := &chartCache{dir: filepath.Join(dir, "charts")}
	for _, sub := range []string{"sha256", "refs"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("chart cache: %w", err)
		}
	}
	return c, nil
}

func (c *chartCache) refPath(key chartKey) string {
	sum := sha256.Sum256([]byte(key.String()))
	return filepath.Join(c.dir, "refs", hex.EncodeToString(sum[:])+".json")
}

func (c *chartCache) archivePath(digest string) (string, bool) {
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexDigest) != 64 || strings.Trim(hexDigest, "0123456789abcdef") != "" {
		return "", false
	}
	return filepath.Join(c.dir, "sha256", hexDigest+".tgz"), true
}

// lookup returns the archive of key and its digest, if cached and intact.
func (c *chartCache) lookup(key chartKey, log *slog.Logger) ([]byte, string, bool) {
	raw, err := os.ReadFile(c.refPath(key))
	if err != nil {
		return nil, "", false
	}
	var ref cacheRef
	if err := json.Unmarshal(raw, &ref); err != nil || ref.chartKey != key {
		return nil, "", false
	}
	p, ok := c.archivePath(ref.Digest)
	if !ok {
		return nil, "", false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, "", false
	}
	if got := sha256Digest(data); got != ref.Digest {
		log.Warn("cached chart archive is damaged; fetching it again", "path", p, "digest", got)
		os.Remove(p)
		return nil, "", false
	}
	return data, ref.Digest, true
}

// store keeps data (whose digest is digest) as key's archive.
func (c *chartCache) store(key chartKey, digest string, data []byte) error {
	p, ok := c.archivePath(digest)
	if !ok {
		return fmt.Errorf("chart cache: bad digest %q", digest)
	}
	if err := writeFileAtomic(p, data); err != nil {
		return err
	}
	ref, err := json.Marshal(cacheRef{chartKey: key, Digest: digest})
	if err != nil {
		return err
	}
	return writeFileAtomic(c.refPath(key), append(ref, '\n'))
}

func writeFileAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), p)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("chart cache: %w", werr)
	}
	return nil
}

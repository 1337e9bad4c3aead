package gitstore

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/schema"
)

// writeFiles commits raw file contents (nil deletes), as a pull request
// would: no parsed values, so the index parses them.
func writeFiles(t *testing.T, s *Store, files map[string][]byte) {
	t.Helper()
	mustApply(t, s, func(v *View) (*Commit, error) {
		c := &Commit{Author: testAuthor, Message: "files\n"}
		for p, b := range files {
			c.Changes = append(c.Changes, Change{Path: p, Content: b})
		}
		return c, nil
	})
}

// richRepository fills a store with records of every kind: deployments
// written through the API's path (parsed values) and as raw files, with
// config, env vars, volumes and status; a cluster and a user; and an
// invalid file.
func richRepository(t *testing.T, s *Store) {
	t.Helper()
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cluster, err := schema.EncodeRecord(&schema.Cluster{APIVersion: schema.APIVersion, Kind: schema.KindCluster,
		ID: testCluster, Name: "prod", Domain: "prod.example.com", CreatedAt: ts})
	if err != nil {
		t.Fatal(err)
	}
	user, err := schema.EncodeRecord(&schema.User{APIVersion: schema.APIVersion, Kind: schema.KindUser,
		ID: "00000000-0000-7000-8000-aaaaaaaaaaaa", Name: "Ada", Email: "ada@example.com", CreatedAt: ts,
		Keys: []schema.APIKey{{Prefix: "mk_abc", SHA256: "00ff", CreatedAt: ts}}})
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, s, map[string][]byte{ClusterPath(testCluster): cluster, UserPath("00000000-0000-7000-8000-aaaaaaaaaaaa"): user})
	for i := range 40 {
		d := newDeployment(i, testCluster, fmt.Sprintf("app-%02d", i))
		if i%3 == 0 {
			port, cpu := int64(8080), 0.25
			secret := "db/password"
			d.Spec.ContainerPort, d.Spec.CPURequest = &port, &cpu
			d.Spec.EnvironmentVariables = []schema.EnvironmentVariable{{Name: "DB_PASSWORD", SecretRef: &secret}}
			d.Spec.Volumes = []schema.Volume{{Path: "/data", SizeGb: 5}}
			d.Spec.Config = map[string]any{"health_check_path": "/healthz", "ingress": true, "command": []any{"run", "--fast"}}
		}
		if i%4 == 0 {
			applied := ts.Add(time.Minute)
			d.Status = &schema.Status{Phase: schema.PhaseRunning, SpecDigest: d.Spec.Digest(), AppliedAt: &applied, EndpointURL: "https://x.example.com"}
		}
		if i%2 == 0 {
			mustApply(t, s, createMutation(d)) // with its parsed value
			continue
		}
		b, err := schema.EncodeFile(d)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, s, map[string][]byte{DeploymentPath(testCluster, d.Spec.Name): b})
	}
	writeFiles(t, s, map[string][]byte{
		DeploymentPath(testCluster, "broken"): []byte("apiVersion: mengi.cloud/v1\nkind: Deployment\nspec: [\n"),
	})
}

// countRecords is how many records the index holds.
func countRecords(s *Store) int {
	n := 0
	s.Read(func(v *View) { v.Each(func(*Record) { n++ }) })
	return n
}

// equalIndexes fails unless a and b hold the same records with the same
// values (deep equality on the parsed values).
func equalIndexes(t *testing.T, a, b *Store) {
	t.Helper()
	collect := func(s *Store) map[string]*Record {
		m := map[string]*Record{}
		s.Read(func(v *View) { v.Each(func(r *Record) { m[r.Path] = r }) })
		return m
	}
	ra, rb := collect(a), collect(b)
	var paths []string
	for p := range ra {
		paths = append(paths, p)
	}
	for p := range rb {
		if _, ok := ra[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		x, y := ra[p], rb[p]
		if x == nil || y == nil {
			t.Errorf("%s: only in one index", p)
			continue
		}
		errX, errY := fmt.Sprint(x.Err()), fmt.Sprint(y.Err())
		if x.Blob() != y.Blob() || x.Phase() != y.Phase() || errX != errY ||
			x.packed() != y.packed() || !reflect.DeepEqual(x.Deployment(), y.Deployment()) || !reflect.DeepEqual(x.Cluster(), y.Cluster()) || !reflect.DeepEqual(x.User(), y.User()) {
			t.Errorf("%s differs:\n%s\n%s", p, stateLine(x), stateLine(y))
		}
	}
}

func stateLine(r *Record) string {
	if d := r.Deployment(); d != nil {
		return fmt.Sprintf("%s %s err=%v %+v %+v %+v", r.Blob(), r.Phase(), r.Err(), d.Metadata, d.Spec, d.Status)
	}
	return fmt.Sprintf("%s %s err=%v cluster=%+v user=%+v", r.Blob(), r.Phase(), r.Err(), r.Cluster(), r.User())
}

// closedRichRepository makes a repository with richRepository's records,
// closes its store (which saves the snapshot), and returns the directory
// and the snapshot's content.
func closedRichRepository(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	richRepository(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(filepath.Join(dir, snapshotFileName))
	if err != nil {
		t.Fatalf("no snapshot after Close: %v", err)
	}
	return dir, snap
}

// TestSnapshotLoadsTheIndexParsingGives closes a store of varied records
// (which saves the snapshot), then opens the repository once from the
// snapshot and once parsing every file, and checks the two indexes hold
// the same records, values, phases and errors.
func TestSnapshotLoadsTheIndexParsingGives(t *testing.T) {
	dir, _ := closedRichRepository(t)
	fromSnapshot := openStore(t, dir)
	full := parsedStore(t, dir)
	equalIndexes(t, fromSnapshot, full)
	if n := countRecords(full); n < 40 {
		t.Fatalf("%d records: the repository was not filled", n)
	}
	// The invalid file and the duplicate are there, with their errors.
	fromSnapshot.Read(func(v *View) {
		if r := v.Record(DeploymentPath(testCluster, "broken")); r == nil || r.Err() == nil {
			t.Errorf("broken file: %+v", r)
		}
	})
}

// parsedStore opens dir with the snapshot moved aside (so every file is
// parsed), then puts the snapshot back.
func parsedStore(t *testing.T, dir string) *Store {
	t.Helper()
	snap := filepath.Join(dir, snapshotFileName)
	aside := filepath.Join(t.TempDir(), "snapshot")
	if err := os.Rename(snap, aside); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Not closed before the snapshot is back: Close would write its own.
	t.Cleanup(func() { s.Close() })
	if err := os.Rename(aside, snap); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStaleSnapshotTakesInLaterCommits opens a repository from a snapshot
// older than the branch (commits made after it: creates, updates,
// deletes) and checks the index is the one parsing every file gives.
func TestStaleSnapshotTakesInLaterCommits(t *testing.T) {
	dir, old := closedRichRepository(t)
	s := openStore(t, dir)
	for i := 100; i < 110; i++ {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, fmt.Sprintf("late-%d", i))))
	}
	d := newDeployment(2, testCluster, "app-02")
	img := "nginx:1.28"
	d.Spec.DockerImage = &img
	b, err := schema.EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, s, map[string][]byte{DeploymentPath(testCluster, "app-02"): b, DeploymentPath(testCluster, "app-05"): nil})
	s.Close()
	// Back to the snapshot of the first close, as after a crash.
	if err := os.WriteFile(filepath.Join(dir, snapshotFileName), old, 0o644); err != nil {
		t.Fatal(err)
	}
	fromSnapshot := openStore(t, dir)
	full := parsedStore(t, dir)
	equalIndexes(t, fromSnapshot, full)
	fromSnapshot.Read(func(v *View) {
		if r := v.Record(DeploymentPath(testCluster, "app-05")); r != nil {
			t.Error("a file deleted after the snapshot is still in the index")
		}
		if r := v.Record(DeploymentPath(testCluster, "late-105")); r == nil || !r.HasDeployment() {
			t.Error("a file created after the snapshot is missing")
		}
	})
}

// TestBadSnapshotIsIgnored damages the snapshot, makes it name a commit
// the repository does not have, and makes it come from a build with
// another deployment schema or an older format: each time the store
// parses every file and opens with the right index.
func TestBadSnapshotIsIgnored(t *testing.T) {
	dir, good := closedRichRepository(t)
	snap := filepath.Join(dir, snapshotFileName)
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	// Well-formed snapshots of a commit that is not in the repository, and
	// from a build whose deployment schema differs.
	unknown, layout := slices.Clone(good), slices.Clone(good)
	unknown[len(snapshotMagic)+sha1.Size] ^= 0xff
	layout[len(snapshotMagic)] ^= 0xff
	older := slices.Clone(good)
	older[len(snapshotMagic)-2] = '1' // "mengi-index 1\n"
	full := parsedStore(t, dir)
	for name, content := range map[string][]byte{"damaged": flipped, "truncated": good[:len(good)-7],
		"cut to half": good[:len(good)/2], "empty": {}, "one byte short": good[:len(good)-1],
		"unknown commit": rechecksum(unknown), "other schema": rechecksum(layout), "older format": rechecksum(older)} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(snap, content, 0o644); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			st, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("Open with a %s snapshot: %v", name, err)
			}
			defer st.Close()
			equalIndexes(t, st, full)
			if !strings.Contains(logs.String(), "parsing every file") {
				t.Errorf("the %s snapshot was used; log:\n%s", name, logs.String())
			}
			// A snapshot of another version is expected after an upgrade:
			// information, not a warning.
			if upgrade := name == "other schema" || name == "older format"; upgrade != strings.Contains(logs.String(), "from another version") {
				t.Errorf("the %s snapshot logged as an upgrade: %v; log:\n%s", name, !upgrade, logs.String())
			}
		})
	}
}

// rechecksum replaces the trailing SHA-1 of a cache file's content.
func rechecksum(b []byte) []byte {
	body := b[:len(b)-20]
	sum := sha1.Sum(body)
	return append(slices.Clone(body), sum[:]...)
}

package registry_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/gitstore/disktest"
	"github.com/mengi-cloud/gitops/registry"
)

// TestKeyUsageOnFullDisk: when the file of the keys' last uses cannot be
// written (a full disk), the failed attempt leaves no temporary file and
// the next comes at the next save interval, not at every request (each
// was logged); once space is freed it is saved again.
func TestKeyUsageOnFullDisk(t *testing.T) {
	mnt := disktest.Mount(t, 8<<20)
	if mnt == "" {
		return // ran in a namespace
	}
	dir := filepath.Join(mnt, "registry")
	r, err := registry.Open(dir, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	key, _, err := r.AddKey(context.Background(), "Ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sha := registry.HashKey(key)
	now := time.Now()
	filler := disktest.Fill(t, mnt)
	if err := r.KeyUsed(sha, now.Add(6*time.Minute)); !gitstore.IsDiskFull(err) {
		t.Fatalf("KeyUsed on a full disk: %v, want a full disk's error", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "mengi-key-usage*")); len(left) != 0 {
		t.Errorf("files left by the failed save: %v", left)
	}
	for m := 7; m < 11; m++ {
		if err := r.KeyUsed(sha, now.Add(time.Duration(m)*time.Minute)); err != nil {
			t.Errorf("KeyUsed %d minutes on, within the interval after the failed save: %v", m, err)
		}
	}
	filler.Remove(t)
	if err := r.KeyUsed(sha, now.Add(12*time.Minute)); err != nil {
		t.Fatalf("KeyUsed once space was freed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "mengi-key-usage")); err != nil {
		t.Errorf("the usage file once space was freed: %v", err)
	}
}

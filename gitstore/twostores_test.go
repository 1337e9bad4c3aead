package gitstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
)

// TestTwoStoresFollowEachOther runs two stores (two processes, say `mengi
// serve` and `mengi agent`) on one repository, writing in turn: each must
// take in the other's commit promptly, also right after the other merged
// the packs it would read from.
func TestTwoStoresFollowEachOther(t *testing.T) {
	dir := t.TempDir() + "/repo"
	a, err := gitstore.Open(dir, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gitstore.Open(dir, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	stalls := 0
	for i := range 300 {
		w := a
		if i%2 == 1 {
			w = b
		}
		_, err := w.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
			return &gitstore.Commit{Author: gitstore.Signature{Name: "x", Email: "x@y.z"}, Message: "m",
				Changes: []gitstore.Change{{Path: fmt.Sprintf("notes/%d.txt", i), Content: []byte("x")}}}, nil
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		other := b
		if w == b {
			other = a
		}
		deadline := time.Now().Add(3 * time.Second)
		for other.Head() != w.Head() {
			if time.Now().After(deadline) {
				stalls++
				t.Logf("write %d: the other store stayed at %s, head %s", i, other.Head(), w.Head())
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if stalls > 0 {
		t.Errorf("%d stalls", stalls)
	}
}

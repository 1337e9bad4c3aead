package gitstore

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/schema"
)

// TestRecordLayout keeps a deployment's record small: a 48-byte struct
// and one string holding its path, blob hash and packed deployment, the
// path first (the index's maps use it as their key).
func TestRecordLayout(t *testing.T) {
	if size := unsafe.Sizeof(Record{}); size > 48 {
		t.Errorf("Record is %d bytes, want at most 48", size)
	}
	d := newDeployment(1, testCluster, "web")
	content, err := schema.EncodeFile(d)
	if err != nil {
		t.Fatal(err)
	}
	p := DeploymentPath(testCluster, "web")
	blob := hashObject(plumbing.BlobObject, content)
	r := parseRecord(p, blob, content, nil)
	if r.Err() != nil || r.Path != p || r.Blob() != blob || r.Phase() != schema.PhasePending || r.DeploymentID() != d.Metadata.ID {
		t.Fatalf("record = %q %s %s %v", r.Path, r.Blob(), r.Phase(), r.Err())
	}
	if unsafe.StringData(r.data) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(r.Path)), len(r.Path))) {
		t.Error("the path and the record's data are two allocations")
	}
	if r.other != nil {
		t.Error("a valid deployment's record carries the fields of other records")
	}
}

// TestRecordPhaseAndErrors: a phase outside the known ones is kept as it
// is; an error and a dropped deployment leave the hash alone.
func TestRecordPhaseAndErrors(t *testing.T) {
	blob := plumbing.Hash{1, 2, 3}
	r := newRecord("clusters/c/x.yaml", blob, snapDeployment, "packed")
	for _, ph := range []schema.Phase{schema.PhaseRunning, "hibernating", schema.PhaseDeleting, ""} {
		r.setPhase(ph)
		if r.Phase() != ph {
			t.Errorf("phase %q read back as %q", ph, r.Phase())
		}
	}
	r.setPacked("")
	r.setErr(errors.New("duplicate"))
	if r.HasDeployment() || r.Err() == nil || r.Blob() != blob {
		t.Errorf("after dropping: has=%v err=%v blob=%s", r.HasDeployment(), r.Err(), r.Blob())
	}
	r.setPacked("again")
	if r.packed() != "again" || r.Blob() != blob {
		t.Errorf("packed %q, blob %s", r.packed(), r.Blob())
	}
}

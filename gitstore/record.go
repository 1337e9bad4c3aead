package gitstore

import (
	"fmt"
	"path"
	"sigs.k8s.io/yaml"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/schema"
)

// Record is one file of the repository that gitstore understands: a
// deployment, a user or a cluster, parsed. Records are immutable; a change
// to the file makes a new Record.
//
// A deployment's record is 48 bytes and one string: the path, the blob
// hash, then the deployment packed (packed.go), which is also the
// record's entry in the index snapshot. Users, clusters and invalid files,
// few, carry the rest apart.
type Record struct {
	// Path is the file's path in the repository.
	Path string
	// data is the blob hash (20 bytes), the record's kind (a snapshot
	// kind byte) and, for a deployment, the packed deployment.
	data  string
	other *recordOther // nil for a valid deployment
	phase uint8        // the deployment's phase: index in phases
}

// recordOther is what a user's, a cluster's or an invalid file's record
// holds besides a deployment's.
type recordOther struct {
	user    *schema.User
	cluster *schema.Cluster
	err     error
	phase   schema.Phase // one phases does not list
}

// phases are the deployment phases a record names by their index.
var phases = [...]schema.Phase{"", schema.PhasePending, schema.PhaseProvisioning, schema.PhasePromoting,
	schema.PhaseRunning, schema.PhaseStopped, schema.PhaseFailed, schema.PhaseError, schema.PhaseMigrating,
	schema.PhaseDeleting}

// newRecord makes a record of the file at p with content blob: kind is
// its snapshot kind, packed its packed deployment ("" when none). The
// path, the hash and the deployment share one allocation.
func newRecord(p string, blob plumbing.Hash, kind byte, packed string) *Record {
	var b strings.Builder
	b.Grow(len(p) + len(blob) + 1 + len(packed))
	b.WriteString(p)
	b.Write(blob[:])
	b.WriteByte(kind)
	b.WriteString(packed)
	all := b.String()
	return &Record{Path: all[:len(p)], data: all[len(p):]}
}

// recordOf is newRecord for a record whose path and data already share
// memory (data is blob, kind and packed deployment, as in a snapshot).
func recordOf(p, data string) *Record { return &Record{Path: p, data: data} }

// Blob is the hash of the file's content.
func (r *Record) Blob() plumbing.Hash {
	var h plumbing.Hash
	copy(h[:], r.data)
	return h
}

// packed is the packed deployment the record holds, "" when none.
func (r *Record) packed() string {
	if len(r.data) <= len(plumbing.Hash{})+1 {
		return ""
	}
	return r.data[len(plumbing.Hash{})+1:]
}

// setPacked makes the record hold packed as its deployment ("" for none).
func (r *Record) setPacked(packed string) {
	n := len(plumbing.Hash{})
	if packed == "" {
		r.data = r.data[:n+1]
		return
	}
	r.data = r.data[:n] + string([]byte{snapDeployment}) + packed
}

// User is the user record the file holds, or nil.
func (r *Record) User() *schema.User {
	if r.other == nil {
		return nil
	}
	return r.other.user
}

// Cluster is the cluster record the file holds, or nil.
func (r *Record) Cluster() *schema.Cluster {
	if r.other == nil {
		return nil
	}
	return r.other.cluster
}

// Err says why the file is not valid (nil when it is). Invalid files are
// kept so the agent can report them; the API does not serve them.
func (r *Record) Err() error {
	if r.other == nil {
		return nil
	}
	return r.other.err
}

// setErr marks the record invalid.
func (r *Record) setErr(err error) {
	if r.other == nil {
		r.other = &recordOther{}
	}
	r.other.err = err
}

// Phase is the deployment's status as the API reports it ("" when the
// record holds no deployment).
func (r *Record) Phase() schema.Phase {
	if r.other != nil && r.other.phase != "" {
		return r.other.phase
	}
	return phases[r.phase]
}

// setPhase sets the deployment's phase.
func (r *Record) setPhase(p schema.Phase) {
	if i := slices.Index(phases[:], p); i >= 0 {
		r.phase = uint8(i)
		if r.other != nil {
			r.other.phase = ""
		}
		return
	}
	if r.other == nil {
		r.other = &recordOther{}
	}
	r.other.phase = p
}

// HasDeployment reports whether the record holds a deployment: the file
// is a valid deployment, or it was one and became invalid (then Err says
// what is wrong and the deployment is the last valid version).
func (r *Record) HasDeployment() bool { return r.packed() != "" }

// Deployment returns the deployment the record holds, or nil. It is
// unpacked on each call (about a microsecond): the caller owns the copy
// and may change it.
func (r *Record) Deployment() *schema.Deployment {
	packed := r.packed()
	if packed == "" {
		return nil
	}
	d, err := unpackDeployment(packed, r.Path)
	if err != nil {
		// Records are packed by this package from validated deployments,
		// and snapshots are checked as they are loaded.
		return nil
	}
	return d
}

// DeploymentID returns the held deployment's metadata.id without
// unpacking it, "" when the record holds none.
func (r *Record) DeploymentID() string { return packedID(r.packed()) }

// OwnerID returns the held deployment's metadata.user_id without
// unpacking it, "" when the record holds none.
func (r *Record) OwnerID() string { return packedUserID(r.packed()) }

// ClusterID returns the held deployment's spec.cluster_id (the cluster
// part of its path), "" when the record holds none.
func (r *Record) ClusterID() string {
	if !r.HasDeployment() {
		return ""
	}
	id, _ := deploymentPathParts(r.Path)
	return id
}

// Layout of the repository.
const (
	clustersDir = "clusters"
	usersDir    = "users"
)

// DeploymentPath is where the deployment called name on cluster clusterID
// lives.
func DeploymentPath(clusterID, name string) string {
	return clustersDir + "/" + clusterID + "/" + name + ".yaml"
}

// ClusterPath is where the record of cluster id lives.
func ClusterPath(id string) string { return clustersDir + "/" + id + ".yaml" }

// UserPath is where the record of user id lives.
func UserPath(id string) string { return usersDir + "/" + id + ".yaml" }

// fileKind tells what a path holds: "deployment", "cluster", "user", or ""
// for files gitstore ignores (a README, say).
func fileKind(p string) string {
	if path.Ext(p) != ".yaml" {
		return ""
	}
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 3 && parts[0] == clustersDir:
		return "deployment"
	case len(parts) == 2 && parts[0] == clustersDir:
		return "cluster"
	case len(parts) == 2 && parts[0] == usersDir:
		return "user"
	}
	return ""
}

// Holds selects the kinds of record a store keeps (Options.Holds).
type Holds uint8

const (
	// HoldsAll keeps deployments, users and clusters in one repository.
	HoldsAll Holds = iota
	// HoldsDeployments keeps deployment files only: the repository that
	// engineers change through pull requests.
	HoldsDeployments
	// HoldsRegistry keeps users (with their key hashes) and clusters only:
	// the operator's repository, written by the API and operator commands.
	HoldsRegistry
)

// keeps reports whether a file of kind k (fileKind) is a record here.
func (h Holds) keeps(k string) bool {
	switch {
	case k == "":
		return false
	case h == HoldsDeployments:
		return k == "deployment"
	case h == HoldsRegistry:
		return k == "user" || k == "cluster"
	}
	return true
}

// kindOf is fileKind(p) when the store keeps that kind, else "".
func (s *Store) kindOf(p string) string {
	if k := fileKind(p); s.opts.Holds.keeps(k) {
		return k
	}
	return ""
}

// parseRecord reads a file of the repository into a Record. value, when not
// nil, is the already-parsed content (the committer knows what it wrote).
func parseRecord(p string, blob plumbing.Hash, content []byte, value any) *Record {
	invalid := func(err error) *Record {
		r := newRecord(p, blob, snapNone, "")
		r.setErr(err)
		return r
	}
	switch fileKind(p) {
	case "deployment":
		d, ok := value.(*schema.Deployment)
		if !ok {
			var errs schema.Errors
			if d, errs = schema.ParseFile(content); errs != nil {
				return invalid(fileError(errs))
			}
		}
		if want := DeploymentPath(d.Spec.ClusterID, d.Spec.Name); want != p {
			return invalid(fmt.Errorf("spec.cluster_id and spec.name say the file should be at %s", want))
		}
		r := newRecord(p, blob, snapDeployment, packDeployment(d, p))
		r.setPhase(d.Phase())
		return r
	case "cluster":
		var c schema.Cluster
		if err := schema.DecodeRecord(content, &c); err != nil {
			return invalid(err)
		} else if ClusterPath(c.ID) != p {
			return invalid(fmt.Errorf("cluster id %q does not match the file name", c.ID))
		}
		r := newRecord(p, blob, snapCluster, "")
		r.other = &recordOther{cluster: &c}
		return r
	case "user":
		var u schema.User
		if err := schema.DecodeRecord(content, &u); err != nil {
			return invalid(err)
		} else if UserPath(u.ID) != p {
			return invalid(fmt.Errorf("user id %q does not match the file name", u.ID))
		}
		r := newRecord(p, blob, snapUser, "")
		r.other = &recordOther{user: &u}
		return r
	}
	return nil
}

// fileError turns validation problems into one error naming line and field.
func fileError(errs schema.Errors) error {
	parts := make([]string, len(errs))
	for i, e := range errs {
		f := e.Field()
		if f == "" {
			f = "(document)"
		}
		parts[i] = fmt.Sprintf("line %d: %s: %s", e.Line, f, e.Msg)
	}
	return fmt.Errorf("invalid deployment file: %s", strings.Join(parts, "; "))
}

// deploymentID finds metadata.id in a deployment file without parsing all
// of it (the history index reads many old versions).
func deploymentID(data []byte) string {
	inMeta := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "metadata:":
			inMeta = true
		case inMeta && strings.HasPrefix(line, "  id:"):
			return strings.Clone(strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "  id:")), `"'`))
		case inMeta && line != "" && line[0] != ' ' && line[0] != '#':
			inMeta = false
		}
	}
	var d struct {
		Metadata struct {
			ID string `json:"id"`
		} `json:"metadata"`
	}
	if yaml.Unmarshal(data, &d) == nil {
		return d.Metadata.ID
	}
	return ""
}

// IsDeploymentPath reports whether p is where a deployment file lives
// (clusters/<cluster-id>/<name>.yaml).
func IsDeploymentPath(p string) bool { return fileKind(p) == "deployment" }

// IsOperatorPath reports whether p is where the registry keeps a user or a
// cluster (users/<id>.yaml, clusters/<id>.yaml).
func IsOperatorPath(p string) bool { k := fileKind(p); return k == "user" || k == "cluster" }

// IsClusterPath reports whether p is a cluster record (clusters/<id>.yaml).
func IsClusterPath(p string) bool { return fileKind(p) == "cluster" }

// ClusterIDOf returns the cluster id of a cluster record's path.
func ClusterIDOf(p string) string {
	return strings.TrimSuffix(strings.TrimPrefix(p, clustersDir+"/"), ".yaml")
}

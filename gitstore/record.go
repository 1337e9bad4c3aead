package gitstore

import (
	"fmt"
	"path"
	"sigs.k8s.io/yaml"
	"strings"
	"unique"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mengi-cloud/gitops/schema"
)

// Record is one file of the repository that gitstore understands: a
// deployment, a user or a cluster, parsed. Records are immutable; a change
// to the file makes a new Record.
type Record struct {
	// Path is the file's path in the repository.
	Path string
	// Blob is the hash of the file's content.
	Blob plumbing.Hash
	// User and Cluster are set when the file is a valid user or cluster
	// record; a deployment is held packed (see Deployment).
	User    *schema.User
	Cluster *schema.Cluster
	// Phase is the deployment's status as the API reports it.
	Phase schema.Phase
	// Err says why the file is not valid (nil when it is). Invalid files are
	// kept so the agent can report them; the API does not serve them.
	Err error
	// packed is the deployment (packed.go), "" when the record holds none.
	packed string
}

// HasDeployment reports whether the record holds a deployment: the file
// is a valid deployment, or it was one and became invalid (then Err says
// what is wrong and the deployment is the last valid version).
func (r *Record) HasDeployment() bool { return r.packed != "" }

// Deployment returns the deployment the record holds, or nil. It is
// unpacked on each call (about a microsecond): the caller owns the copy
// and may change it.
func (r *Record) Deployment() *schema.Deployment {
	if r.packed == "" {
		return nil
	}
	d, err := unpackDeployment(r.packed, r.Path)
	if err != nil {
		// Records are packed by this package from validated deployments,
		// and snapshots are checked as they are loaded.
		return nil
	}
	return d
}

// DeploymentID returns the held deployment's metadata.id without
// unpacking it, "" when the record holds none.
func (r *Record) DeploymentID() string { return packedID(r.packed) }

// OwnerID returns the held deployment's metadata.user_id without
// unpacking it, "" when the record holds none.
func (r *Record) OwnerID() string { return packedUserID(r.packed) }

// ClusterID returns the held deployment's spec.cluster_id (the cluster
// part of its path), "" when the record holds none.
func (r *Record) ClusterID() string {
	if r.packed == "" {
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

// parseRecord reads a file of the repository into a Record. value, when not
// nil, is the already-parsed content (the committer knows what it wrote).
func parseRecord(p string, blob plumbing.Hash, content []byte, value any) *Record {
	r := &Record{Path: p, Blob: blob}
	switch fileKind(p) {
	case "deployment":
		d, ok := value.(*schema.Deployment)
		if !ok {
			var errs schema.Errors
			if d, errs = schema.ParseFile(content); errs != nil {
				r.Err = fileError(errs)
				return r
			}
		}
		if want := DeploymentPath(d.Spec.ClusterID, d.Spec.Name); want != p {
			r.Err = fmt.Errorf("spec.cluster_id and spec.name say the file should be at %s", want)
			return r
		}
		r.packed = packDeployment(d, p)
		r.Phase = unique.Make(d.Phase()).Value()
	case "cluster":
		var c schema.Cluster
		if err := schema.DecodeRecord(content, &c); err != nil {
			r.Err = err
		} else if ClusterPath(c.ID) != p {
			r.Err = fmt.Errorf("cluster id %q does not match the file name", c.ID)
		} else {
			r.Cluster = &c
		}
	case "user":
		var u schema.User
		if err := schema.DecodeRecord(content, &u); err != nil {
			r.Err = err
		} else if UserPath(u.ID) != p {
			r.Err = fmt.Errorf("user id %q does not match the file name", u.ID)
		} else {
			r.User = &u
		}
	default:
		return nil
	}
	return r
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

// IsClusterPath reports whether p is a cluster record (clusters/<id>.yaml).
func IsClusterPath(p string) bool { return fileKind(p) == "cluster" }

// ClusterIDOf returns the cluster id of a cluster record's path.
func ClusterIDOf(p string) string {
	return strings.TrimSuffix(strings.TrimPrefix(p, clustersDir+"/"), ".yaml")
}

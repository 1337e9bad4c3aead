package gitstore

import (
	"slices"
	"strings"

	"github.com/mengi-cloud/gitops/schema"
)

// index is the in-memory view of the head tree: every record by path, and
// the lookups the API needs. Only the committer goroutine changes it, under
// Store.mu; readers hold the read lock.
type index struct {
	files        map[string]*Record
	deployments  map[string]string    // deployment id → path
	byUser       map[string][]*Record // user id → deployments, sorted by id
	bulk         bool                 // loading: byUser is sorted once at the end
	usersByKey   map[string]string    // key SHA-256 → user path
	usersByEmail map[string]string    // email → user path
	clusterNames map[string]string    // cluster name → cluster path
}

func newIndex() *index {
	return &index{
		files:        map[string]*Record{},
		deployments:  map[string]string{},
		byUser:       map[string][]*Record{},
		usersByKey:   map[string]string{},
		usersByEmail: map[string]string{},
		clusterNames: map[string]string{},
	}
}

// set puts r at path p (nil removes the file), keeping the lookups current.
func (ix *index) set(p string, r *Record) {
	if old := ix.files[p]; old != nil {
		ix.unlink(old)
		delete(ix.files, p)
	}
	if r == nil {
		return
	}
	ix.files[p] = r
	ix.link(r)
}

func (ix *index) link(r *Record) {
	switch {
	case r.Deployment != nil:
		id := r.Deployment.Metadata.ID
		if other, taken := ix.deployments[id]; taken && other != r.Path {
			r.Deployment, r.Err = nil, errDuplicateID(id, other)
			return
		}
		ix.deployments[id] = r.Path
		uid := r.Deployment.Metadata.UserID
		if ix.bulk {
			ix.byUser[uid] = append(ix.byUser[uid], r)
			return
		}
		list := ix.byUser[uid]
		if i, found := slices.BinarySearchFunc(list, id, byID); found {
			list[i] = r
		} else {
			ix.byUser[uid] = slices.Insert(list, i, r)
		}
	case r.Cluster != nil:
		ix.clusterNames[r.Cluster.Name] = r.Path
	case r.User != nil:
		ix.usersByEmail[strings.ToLower(r.User.Email)] = r.Path
		for _, k := range r.User.Keys {
			ix.usersByKey[k.SHA256] = r.Path
		}
	}
}

func (ix *index) unlink(r *Record) {
	switch {
	case r.Deployment != nil:
		id := r.Deployment.Metadata.ID
		if ix.deployments[id] == r.Path {
			delete(ix.deployments, id)
		}
		uid := r.Deployment.Metadata.UserID
		list := ix.byUser[uid]
		if i, found := slices.BinarySearchFunc(list, id, byID); found && list[i] == r {
			ix.byUser[uid] = slices.Delete(list, i, i+1)
		}
	case r.Cluster != nil:
		if ix.clusterNames[r.Cluster.Name] == r.Path {
			delete(ix.clusterNames, r.Cluster.Name)
		}
	case r.User != nil:
		if ix.usersByEmail[strings.ToLower(r.User.Email)] == r.Path {
			delete(ix.usersByEmail, strings.ToLower(r.User.Email))
		}
		for _, k := range r.User.Keys {
			if ix.usersByKey[k.SHA256] == r.Path {
				delete(ix.usersByKey, k.SHA256)
			}
		}
	}
}

// byID orders a user's deployments by id (UUIDv7: creation order).
func byID(r *Record, id string) int { return strings.Compare(r.Deployment.Metadata.ID, id) }

// endBulk sorts what a bulk load appended.
func (ix *index) endBulk() {
	ix.bulk = false
	for _, list := range ix.byUser {
		slices.SortFunc(list, func(a, b *Record) int { return strings.Compare(a.Deployment.Metadata.ID, b.Deployment.Metadata.ID) })
	}
}

// View is the state a write's checks run against: the head of the branch
// plus the writes queued before it in the same batch. It is read-only.
type View struct {
	base    *index
	changed map[string]*Record // path → new record; nil = deleted
	ids     map[string]string  // deployment id → new path; "" = deleted
}

func newView(base *index) *View {
	return &View{base: base, changed: map[string]*Record{}, ids: map[string]string{}}
}

// Record returns the record at path p, or nil.
func (v *View) Record(p string) *Record {
	if r, ok := v.changed[p]; ok {
		return r
	}
	return v.base.files[p]
}

// Deployment returns the deployment with this id, or nil.
func (v *View) Deployment(id string) *Record {
	p, ok := v.ids[id]
	if !ok {
		p = v.base.deployments[id]
	}
	if p == "" {
		return nil
	}
	if r := v.Record(p); r != nil && r.Deployment != nil && r.Deployment.Metadata.ID == id {
		return r
	}
	return nil
}

// DeploymentByName returns the deployment called name on the cluster, or
// nil. Names are unique per cluster because the path is made of both.
func (v *View) DeploymentByName(clusterID, name string) *Record {
	return v.Record(DeploymentPath(clusterID, name))
}

// Cluster returns the cluster record with this id, or nil.
func (v *View) Cluster(id string) *schema.Cluster {
	if r := v.Record(ClusterPath(id)); r != nil {
		return r.Cluster
	}
	return nil
}

// ClusterByName returns the cluster record with this name, or nil.
func (v *View) ClusterByName(name string) *schema.Cluster {
	for _, r := range v.changed {
		if r != nil && r.Cluster != nil && r.Cluster.Name == name {
			return r.Cluster
		}
	}
	if p, ok := v.base.clusterNames[name]; ok {
		if r := v.Record(p); r != nil {
			return r.Cluster
		}
	}
	return nil
}

// User returns the user record with this id, or nil.
func (v *View) User(id string) *schema.User {
	if r := v.Record(UserPath(id)); r != nil {
		return r.User
	}
	return nil
}

// UserByEmail returns the user with this email (case-insensitive), or nil.
func (v *View) UserByEmail(email string) *schema.User {
	email = strings.ToLower(email)
	for _, r := range v.changed {
		if r != nil && r.User != nil && strings.ToLower(r.User.Email) == email {
			return r.User
		}
	}
	if p, ok := v.base.usersByEmail[email]; ok {
		if r := v.Record(p); r != nil {
			return r.User
		}
	}
	return nil
}

// set records a change made by a write of the batch. A deployment file
// that became invalid keeps the last valid deployment it held, with its
// error, so the API still shows the deployment (in status `error`) and the
// agent can report the problem in the file.
func (v *View) set(p string, r *Record) {
	if old := v.Record(p); r != nil && r.Err != nil && r.Deployment == nil && old != nil && old.Deployment != nil {
		r.Deployment, r.Phase = old.Deployment, schema.PhaseError
	}
	if old := v.Record(p); old != nil && old.Deployment != nil {
		id := old.Deployment.Metadata.ID
		cur, moved := v.ids[id]
		if (moved && cur == p) || (!moved && v.base.deployments[id] == p) {
			v.ids[id] = ""
		}
	}
	v.changed[p] = r
	if r != nil && r.Deployment != nil {
		v.ids[r.Deployment.Metadata.ID] = p
	}
}

// commitTo applies the batch's changes to the index: first every old
// record of a changed path is removed, then the new ones are added, so a
// deployment that moved (a rename, even onto a path another write of the
// batch vacated) is never mistaken for a duplicate of itself.
func (v *View) commitTo(ix *index) {
	paths := make([]string, 0, len(v.changed))
	for p := range v.changed {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		ix.set(p, nil)
	}
	for _, p := range paths {
		if r := v.changed[p]; r != nil {
			ix.set(p, r)
		}
	}
}

// Each calls fn for every record of the head (batch changes included), in
// no particular order.
func (v *View) Each(fn func(*Record)) {
	for p, r := range v.base.files {
		if _, changed := v.changed[p]; !changed {
			fn(r)
		}
	}
	for _, r := range v.changed {
		if r != nil {
			fn(r)
		}
	}
}

package gitstore

import (
	"fmt"
	"slices"
	"strings"
	"unique"

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
	ix.files[r.Path] = r // the record's own copy of the path as the key
	ix.link(r)
}

// replace puts r in place of the record at p when both are versions of
// the same valid deployment of the same user (an update), which keeps the
// lists as they are; it reports whether it did.
func (ix *index) replace(p string, r *Record) bool {
	old := ix.files[p]
	if old == nil || r == nil || !old.HasDeployment() || !r.HasDeployment() {
		return false
	}
	id, uid := r.DeploymentID(), r.OwnerID()
	if old.DeploymentID() != id || old.OwnerID() != uid || ix.deployments[id] != p {
		return false
	}
	list := ix.byUser[uid]
	i, found := slices.BinarySearchFunc(list, id, byID)
	if !found || list[i] != old {
		return false
	}
	list[i] = r
	// Assigning to a string key stores the new key too: the maps keep no
	// part of the old record alive.
	ix.files[r.Path] = r
	ix.deployments[id] = p
	return true
}

func (ix *index) link(r *Record) {
	switch {
	case r.HasDeployment():
		id := r.DeploymentID()
		if other, taken := ix.deployments[id]; taken && other != r.Path {
			r.setPacked("")
			r.setErr(errDuplicateID(id, other))
			return
		}
		ix.deployments[id] = r.Path
		uid := unique.Make(r.OwnerID()).Value()
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
	case r.Cluster() != nil:
		ix.clusterNames[r.Cluster().Name] = r.Path
	case r.User() != nil:
		u := r.User()
		ix.usersByEmail[strings.ToLower(u.Email)] = r.Path
		for _, k := range u.Keys {
			ix.usersByKey[k.SHA256] = r.Path
		}
	}
}

func (ix *index) unlink(r *Record) {
	switch {
	case r.HasDeployment():
		id := r.DeploymentID()
		if ix.deployments[id] == r.Path {
			delete(ix.deployments, id)
		}
		uid := unique.Make(r.OwnerID()).Value() // a key that keeps no record alive
		list := ix.byUser[uid]
		if i, found := slices.BinarySearchFunc(list, id, byID); found && list[i] == r {
			ix.byUser[uid] = slices.Delete(list, i, i+1)
		}
	case r.Cluster() != nil:
		if name := r.Cluster().Name; ix.clusterNames[name] == r.Path {
			delete(ix.clusterNames, name)
		}
	case r.User() != nil:
		u := r.User()
		if email := strings.ToLower(u.Email); ix.usersByEmail[email] == r.Path {
			delete(ix.usersByEmail, email)
		}
		for _, k := range u.Keys {
			if ix.usersByKey[k.SHA256] == r.Path {
				delete(ix.usersByKey, k.SHA256)
			}
		}
	}
}

// byID orders a user's deployments by id (UUIDv7: creation order).
func byID(r *Record, id string) int { return strings.Compare(r.DeploymentID(), id) }

// endBulk sorts what a bulk load appended.
func (ix *index) endBulk() {
	ix.bulk = false
	for _, list := range ix.byUser {
		slices.SortFunc(list, func(a, b *Record) int { return strings.Compare(a.DeploymentID(), b.DeploymentID()) })
	}
}

// View is the state a write's checks run against: the head of the branch
// plus the writes queued before it in the same batch, and those of the
// batch before it when that one is still being made durable. It is
// read-only.
type View struct {
	base    *index
	prev    *View              // the batch in flight this one builds on, or nil
	changed map[string]*Record // path → new record; nil = deleted
	ids     map[string]string  // deployment id → new path; "" = deleted
}

func newView(base *index) *View {
	return &View{base: base, changed: map[string]*Record{}, ids: map[string]string{}}
}

// lookup finds a path changed by this view's batch or the ones before it.
func (v *View) lookup(p string) (*Record, bool) {
	for w := v; w != nil; w = w.prev {
		if r, ok := w.changed[p]; ok {
			return r, true
		}
	}
	return nil, false
}

// pathOf returns where the deployment id is, "" when nowhere.
func (v *View) pathOf(id string) string {
	for w := v; w != nil; w = w.prev {
		if p, ok := w.ids[id]; ok {
			return p
		}
	}
	return v.base.deployments[id]
}

// eachChanged calls fn for every record the batches of the view changed,
// newest first (a path may come more than once).
func (v *View) eachChanged(fn func(p string, r *Record)) {
	for w := v; w != nil; w = w.prev {
		for p, r := range w.changed {
			fn(p, r)
		}
	}
}

// Record returns the record at path p, or nil.
func (v *View) Record(p string) *Record {
	if r, ok := v.lookup(p); ok {
		return r
	}
	return v.base.files[p]
}

// Deployment returns the deployment with this id, or nil.
func (v *View) Deployment(id string) *Record {
	p := v.pathOf(id)
	if p == "" {
		return nil
	}
	if r := v.Record(p); r != nil && r.HasDeployment() && r.DeploymentID() == id {
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
		return r.Cluster()
	}
	return nil
}

// ClusterByName returns the cluster record with this name, or nil.
func (v *View) ClusterByName(name string) *schema.Cluster {
	var found *schema.Cluster
	v.eachChanged(func(p string, r *Record) {
		if found != nil || r == nil {
			return
		}
		if c := r.Cluster(); c != nil && c.Name == name && v.Record(p) == r {
			found = c
		}
	})
	if found != nil {
		return found
	}
	if p, ok := v.base.clusterNames[name]; ok {
		if r := v.Record(p); r != nil {
			if c := r.Cluster(); c != nil && c.Name == name {
				return c
			}
		}
	}
	return nil
}

// User returns the user record with this id, or nil.
func (v *View) User(id string) *schema.User {
	if r := v.Record(UserPath(id)); r != nil {
		return r.User()
	}
	return nil
}

// UserByEmail returns the user with this email (case-insensitive), or nil.
func (v *View) UserByEmail(email string) *schema.User {
	email = strings.ToLower(email)
	var found *schema.User
	v.eachChanged(func(p string, r *Record) {
		if found != nil || r == nil {
			return
		}
		if u := r.User(); u != nil && strings.ToLower(u.Email) == email && v.Record(p) == r {
			found = u
		}
	})
	if found != nil {
		return found
	}
	if p, ok := v.base.usersByEmail[email]; ok {
		if r := v.Record(p); r != nil {
			if u := r.User(); u != nil && strings.ToLower(u.Email) == email {
				return u
			}
		}
	}
	return nil
}

// set records a change made by a write of the batch. A deployment file
// that became invalid keeps the last valid deployment it held, with its
// error, so the API still shows the deployment (in status `error`) and the
// agent can report the problem in the file. A version that changes the
// deployment's owner is invalid (see ownerChanged).
func (v *View) set(p string, r *Record) {
	old := v.Record(p)
	if r != nil && r.Err() == nil {
		if err := v.ownerChanged(old, r); err != nil {
			r.setPacked("")
			r.setErr(err)
		}
	}
	if r != nil && r.Err() != nil && !r.HasDeployment() && old != nil && old.HasDeployment() {
		r.setPacked(old.packed())
		r.setPhase(schema.PhaseError)
	}
	if old != nil && old.HasDeployment() {
		if id := old.DeploymentID(); v.pathOf(id) == p {
			v.ids[id] = ""
		}
	}
	v.changed[p] = r
	if r != nil && r.HasDeployment() {
		v.ids[r.DeploymentID()] = p
	}
}

// ownerChanged reports a new version r of a deployment whose
// metadata.user_id differs from the version before it: the one at the
// same path, or, for a file moved in the same change, the one the index
// holds under its id. A deployment's owner is fixed at creation; only a
// new deployment (a new id) may name another user. Comparing by id keeps
// this true across any gap: whatever happened between two versions of
// one deployment, they must name one owner.
func (v *View) ownerChanged(old, r *Record) error {
	if !r.HasDeployment() {
		return nil
	}
	id := r.DeploymentID()
	prev := old
	if prev == nil || prev.DeploymentID() != id {
		prev = v.base.files[v.base.deployments[id]]
	}
	if prev == nil || prev.DeploymentID() != id || prev.OwnerID() == r.OwnerID() {
		return nil
	}
	return fmt.Errorf("metadata.user_id: deployment %s belongs to user %s; a deployment's owner never changes "+
		"(create a new deployment for another user instead)", id, prev.OwnerID())
}

// commitTo applies the batch's own changes to the index (the batch before
// it must have been applied already): first every old record of a changed
// path is removed, then the new ones are added, so a deployment that moved
// (a rename, even onto a path another write of the batch vacated) is never
// mistaken for a duplicate of itself. A record replaced by the next
// version of the same deployment keeps its place in the lists.
func (v *View) commitTo(ix *index) {
	paths := make([]string, 0, len(v.changed))
	for p := range v.changed {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var moved []string
	for _, p := range paths {
		if ix.replace(p, v.changed[p]) {
			continue
		}
		ix.set(p, nil)
		moved = append(moved, p)
	}
	for _, p := range moved {
		if r := v.changed[p]; r != nil {
			ix.set(p, r)
		}
	}
}

// Each calls fn for every record of the head (batch changes included), in
// no particular order.
func (v *View) Each(fn func(*Record)) {
	for p, r := range v.base.files {
		if _, changed := v.lookup(p); !changed {
			fn(r)
		}
	}
	seen := map[string]bool{}
	v.eachChanged(func(p string, r *Record) {
		if !seen[p] {
			seen[p] = true
			if r != nil {
				fn(r)
			}
		}
	})
}

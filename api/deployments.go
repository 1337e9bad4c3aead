package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// author is the commit author of a user's change.
func author(u *schema.User) gitstore.Signature {
	return gitstore.Signature{Name: u.Name, Email: u.Email}
}

// subject names a deployment in commit subjects: cluster name and
// deployment name, as people say it.
func subject(c *schema.Cluster, clusterID, name, action string) string {
	cluster := clusterID
	if c != nil && c.Name != "" {
		cluster = c.Name
	}
	return fmt.Sprintf("deployment %s/%s: %s", cluster, name, action)
}

func trailers(r *http.Request, id string) []gitstore.Trailer {
	return []gitstore.Trailer{{Key: "Deployment-Id", Value: id}, requestTrailer(r)}
}

func requestTrailer(r *http.Request) gitstore.Trailer {
	return gitstore.Trailer{Key: "Request-Id", Value: requestID(r.Context())}
}

// usableCluster returns the cluster if user may deploy to it.
func (s *Server) usableCluster(id string, user *schema.User) (*schema.Cluster, error) {
	c := s.reg.Cluster(id)
	if c == nil || !c.Allows(user.Email) {
		return nil, errClusterNotFound
	}
	return c, nil
}

// denied says why the registry would not admit owner's deployment on the
// cluster with this id (c, nil when it is not registered), nil when it
// would.
func denied(c *schema.Cluster, owner *schema.User, clusterID string) error {
	switch {
	case c == nil:
		return fmt.Errorf("spec.cluster_id: cluster %s is not registered", clusterID)
	case !c.Allows(owner.Email):
		return fmt.Errorf("spec.cluster_id: user %s may not deploy to cluster %s any more; nothing is applied (an operator grants access)", owner.Email, c.Name)
	}
	return nil
}

// ownDeployment returns the user's deployment with this id; another user's
// deployment is not found, exactly like a missing one.
func ownDeployment(v *gitstore.View, id string, user *schema.User) (*gitstore.Record, error) {
	r := v.Deployment(id)
	if r == nil || r.OwnerID() != user.ID {
		return nil, errDeploymentNotFound
	}
	return r, nil
}

func nameTaken(name string) error {
	return errorf(http.StatusConflict, fmt.Sprintf("A deployment named '%s' already exists on this cluster", name))
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	body, err := readJSONBody(w, r)
	if err != nil {
		return err
	}
	release, err := s.heavySlot(r.Context(), len(body))
	if err != nil {
		return err
	}
	defer release()
	spec, errs := schema.DecodeCreate(body)
	if errs != nil {
		return validation(errs)
	}
	spec.ClusterID = strings.ToLower(spec.ClusterID)
	canonical(spec)
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new deployment id: %w", err)
	}
	now := s.now().UTC().Truncate(time.Second)
	d := &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: id.String(), UserID: user.ID, CreatedAt: now, UpdatedAt: now},
		Spec:     *spec,
	}
	// The file does not depend on the repository's state: encode it here,
	// not on the store's committer goroutine.
	content, err := schema.EncodeFile(d)
	if err != nil {
		return err
	}
	cluster, err := s.usableCluster(spec.ClusterID, user)
	if err != nil {
		return err
	}
	res, err := s.store.Apply(r.Context(), func(v *gitstore.View) (*gitstore.Commit, error) {
		if v.DeploymentByName(spec.ClusterID, spec.Name) != nil {
			return nil, nameTaken(spec.Name)
		}
		return &gitstore.Commit{
			Author:  author(user),
			Message: gitstore.Message(subject(cluster, spec.ClusterID, spec.Name, "create"), describeSpec(spec), trailers(r, d.Metadata.ID)...),
			Changes: []gitstore.Change{{Path: gitstore.DeploymentPath(spec.ClusterID, spec.Name), Content: content, Value: d}},
		}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, deploymentResponse(res.Records[0], cluster, user))
	return nil
}

// canonical drops empty lists and objects: the file leaves them out, so
// reading it back gives nil, and the record handed to the index (which
// serves every read until a restart) must be what the file says.
func canonical(s *schema.Spec) {
	if len(s.Config) == 0 {
		s.Config = nil
	}
	if len(s.Volumes) == 0 {
		s.Volumes = nil
	}
	if len(s.EnvironmentVariables) == 0 {
		s.EnvironmentVariables = nil
	}
}

// describeSpec summarises a new deployment for its commit message body.
func describeSpec(s *schema.Spec) string {
	var parts []string
	parts = append(parts, fmt.Sprintf("app_type: %s", s.AppType), fmt.Sprintf("deployment_type: %s", s.DeploymentType))
	if s.DockerImage != nil {
		parts = append(parts, "docker_image: "+*s.DockerImage)
	}
	if s.HelmChartName != nil && s.HelmChartVersion != nil && s.HelmRepoURL != nil {
		parts = append(parts, fmt.Sprintf("helm chart: %s %s from %s", *s.HelmChartName, *s.HelmChartVersion, *s.HelmRepoURL))
	}
	if s.Replicas != nil {
		parts = append(parts, fmt.Sprintf("replicas: %d", *s.Replicas))
	}
	return strings.Join(parts, "\n")
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var rec *gitstore.Record
	s.store.Read(func(v *gitstore.View) { rec, err = ownDeployment(v, id, user) })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deploymentResponse(rec, s.reg.Cluster(rec.ClusterID()), user))
	return nil
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	q, err := parseListQuery(r)
	if err != nil {
		return err
	}
	recs := s.store.DeploymentsOf(user.ID, q.skip, q.limit, func(rec *gitstore.Record) bool {
		return (q.clusterID == "" || rec.ClusterID() == q.clusterID) &&
			(q.status == "" || rec.Phase() == q.status)
	})
	// Deployments are unpacked outside the store's lock.
	out := make([]DeploymentResponse, len(recs))
	clusters := map[string]*schema.Cluster{}
	for i, rec := range recs {
		id := rec.ClusterID()
		c, ok := clusters[id]
		if !ok {
			c = s.reg.Cluster(id)
			clusters[id] = c
		}
		out[i] = deploymentResponse(rec, c, user)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) updateDeployment(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	body, err := readJSONBody(w, r)
	if err != nil {
		return err
	}
	release, err := s.heavySlot(r.Context(), len(body))
	if err != nil {
		return err
	}
	defer release()
	upd, errs := schema.DecodeUpdate(body)
	if errs != nil {
		return validation(errs)
	}
	now := s.now().UTC().Truncate(time.Second)
	var cluster *schema.Cluster
	res, err := s.store.Apply(r.Context(), func(v *gitstore.View) (*gitstore.Commit, error) {
		rec, err := ownDeployment(v, id, user)
		if err != nil {
			return nil, err
		}
		old := rec.Deployment()
		if old.Metadata.DeletionRequestedAt != nil {
			return nil, errorf(http.StatusConflict, "Deployment is being deleted")
		}
		spec, errs := upd.Apply(old.Spec)
		if errs != nil {
			return nil, validation(errs)
		}
		canonical(&spec)
		cluster = s.reg.Cluster(spec.ClusterID)
		if err := denied(cluster, user, spec.ClusterID); err != nil {
			return nil, errorf(http.StatusForbidden, "You may not deploy to this deployment's cluster any more, so it cannot be changed; it can still be deleted")
		}
		changed := schema.Changed(old.Spec, spec)
		if len(changed) == 0 {
			return nil, nil
		}
		d := *old
		d.Spec, d.Metadata.UpdatedAt = spec, now
		changes, err := moveOrWrite(v, old, &d)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  author(user),
			Message: gitstore.Message(subject(cluster, spec.ClusterID, spec.Name, "update "+strings.Join(changed, ", ")), describeChanges(old.Spec, spec, changed), trailers(r, d.Metadata.ID)...),
			Changes: changes,
		}, nil
	})
	if err != nil {
		return err
	}
	rec := res.Records
	if !res.Changed {
		return s.getDeployment(w, r, user)
	}
	writeJSON(w, http.StatusOK, deploymentResponse(lastRecord(rec), cluster, user))
	return nil
}

// moveOrWrite writes d at its path; a rename also deletes the old file, and
// the new name must be free.
func moveOrWrite(v *gitstore.View, old, d *schema.Deployment) ([]gitstore.Change, error) {
	content, err := schema.EncodeFile(d)
	if err != nil {
		return nil, err
	}
	oldPath := gitstore.DeploymentPath(old.Spec.ClusterID, old.Spec.Name)
	newPath := gitstore.DeploymentPath(d.Spec.ClusterID, d.Spec.Name)
	if oldPath == newPath {
		return []gitstore.Change{{Path: newPath, Content: content, Value: d}}, nil
	}
	if v.Record(newPath) != nil {
		return nil, nameTaken(d.Spec.Name)
	}
	return []gitstore.Change{{Path: oldPath}, {Path: newPath, Content: content, Value: d}}, nil
}

func lastRecord(rs []*gitstore.Record) *gitstore.Record {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] != nil {
			return rs[i]
		}
	}
	return nil
}

func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Second)
	var cluster *schema.Cluster
	var current *gitstore.Record
	res, err := s.store.Apply(r.Context(), func(v *gitstore.View) (*gitstore.Commit, error) {
		rec, err := ownDeployment(v, id, user)
		if err != nil {
			return nil, err
		}
		cluster, current = s.reg.Cluster(rec.ClusterID()), rec
		d := rec.Deployment()
		if d.Metadata.DeletionRequestedAt != nil {
			return nil, nil // already requested
		}
		d.Metadata.DeletionRequestedAt, d.Metadata.UpdatedAt = &now, now
		content, err := schema.EncodeFile(d)
		if err != nil {
			return nil, err
		}
		return &gitstore.Commit{
			Author:  author(user),
			Message: gitstore.Message(subject(cluster, d.Spec.ClusterID, d.Spec.Name, "delete"), "The agent removes its objects from the cluster, then this file.", trailers(r, d.Metadata.ID)...),
			Changes: []gitstore.Change{{Path: rec.Path, Content: content, Value: d}},
		}, nil
	})
	if err != nil {
		return err
	}
	if res.Changed {
		current = res.Records[0]
	}
	writeJSON(w, http.StatusAccepted, deploymentResponse(current, cluster, user))
	return nil
}

func (s *Server) deploymentHistory(w http.ResponseWriter, r *http.Request, user *schema.User) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var rec *gitstore.Record
	s.store.Read(func(v *gitstore.View) { rec, err = ownDeployment(v, id, user) })
	if err != nil {
		return err
	}
	entries, err := s.store.History(r.Context(), rec.DeploymentID())
	if err != nil {
		return err
	}
	out := make([]HistoryResponse, 0, len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		out = append(out, HistoryResponse{SHA: e.SHA, Author: e.AuthorName, AuthorEmail: e.AuthorEmail, Time: e.Time.UTC(), Message: e.Message})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

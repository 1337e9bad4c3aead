package bench

import (
	"fmt"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// seedTime is the creation time of every seeded record.
var seedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seedID is the id of the i-th seeded deployment.
func seedID(i int) string { return fmt.Sprintf("00000000-0000-7000-9000-%012d", i) }

// seedDeployment is the i-th seeded deployment of a repository whose
// clusters are clusterIDs.
func seedDeployment(i int, userID string, clusterIDs []string) *schema.Deployment {
	img, replicas := "nginx:1.27", int64(1)
	return &schema.Deployment{APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{ID: seedID(i), UserID: userID, CreatedAt: seedTime, UpdatedAt: seedTime},
		Spec: schema.Spec{ClusterID: clusterIDs[i%len(clusterIDs)], Name: fmt.Sprintf("seed-%06d", i), AppType: schema.AppWebApp,
			DeploymentType: schema.TypeDocker, DockerImage: &img, Replicas: &replicas}}
}

// Write is one write of a store workload: a new deployment (Create) or a
// new version of a seeded one.
type Write struct {
	Create     bool
	Path       string
	Deployment *schema.Deployment
	Content    []byte // the file, as the API would write it
	Author     gitstore.Signature
	Message    string
}

// Workload generates the writes of a store benchmark deterministically:
// writer w's i-th write is the same every time it is asked for, so the
// store and the `git fast-import` reference run the same writes.
//
// Even-numbered writes of a writer create a deployment, odd ones update a
// seeded deployment (a new image tag and replica count). Each writer
// updates its own share of the seeded deployments (those whose index is w
// modulo the number of writers), so one deployment's updates come from one
// writer, in order.
type Workload struct {
	Seed    *Seed
	Writers int
	// Run makes the names and image tags of this run unique, so runs on the
	// same repository never collide and every write changes its file.
	Run string
	// Now is the updated_at of every write.
	Now time.Time
}

// Write returns writer w's i-th write.
func (wl *Workload) Write(w, i int) (*Write, error) {
	s := wl.Seed
	var d *schema.Deployment
	create := i%2 == 0 || s.Deployments == 0
	if create {
		img, replicas := "nginx:1.27", int64(1)
		d = &schema.Deployment{APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
			Metadata: schema.Metadata{ID: wl.createdID(w, i), UserID: s.UserID, CreatedAt: wl.Now, UpdatedAt: wl.Now},
			Spec: schema.Spec{ClusterID: s.ClusterIDs[(w+i)%len(s.ClusterIDs)], Name: fmt.Sprintf("b%s-%d-%d", wl.Run, w, i), AppType: schema.AppWebApp,
				DeploymentType: schema.TypeDocker, DockerImage: &img, Replicas: &replicas}}
	} else {
		// The k-th update of writer w goes to its k-th own seeded deployment,
		// round robin.
		own := (s.Deployments - w + wl.Writers - 1) / wl.Writers
		if own == 0 {
			own, w = 1, w%s.Deployments
		}
		k := (i / 2) % own
		d = seedDeployment(w+k*wl.Writers, s.UserID, s.ClusterIDs)
		img, replicas := fmt.Sprintf("nginx:1.27.%s-%d", wl.Run, i), int64(i%9+2)
		d.Spec.DockerImage, d.Spec.Replicas = &img, &replicas
		d.Metadata.UpdatedAt = wl.Now
	}
	content, err := schema.EncodeFile(d)
	if err != nil {
		return nil, fmt.Errorf("write %d of writer %d: %w", i, w, err)
	}
	action := "update"
	if create {
		action = "create"
	}
	return &Write{
		Create:     create,
		Path:       gitstore.DeploymentPath(d.Spec.ClusterID, d.Spec.Name),
		Deployment: d,
		Content:    content,
		Author:     gitstore.Signature{Name: "Bench", Email: "bench@example.com"},
		Message: gitstore.Message(fmt.Sprintf("deployment %s: %s", d.Spec.Name, action),
			fmt.Sprintf("docker_image: %s\nreplicas: %d", *d.Spec.DockerImage, *d.Spec.Replicas),
			gitstore.Trailer{Key: "Deployment-Id", Value: d.Metadata.ID}),
	}, nil
}

// createdID is the id of the deployment writer w's i-th write creates.
// Like the API's UUIDv7 ids, later writes get higher ids.
func (wl *Workload) createdID(w, i int) string {
	return fmt.Sprintf("%s-%04x-7%03x-a000-%012d", wl.id8(), (i>>12)&0xffff, i&0xfff, w)
}

// id8 is the first group of a created deployment's id: eight hex digits
// taken from Run, so ids of different runs differ.
func (wl *Workload) id8() string {
	h := uint32(2166136261)
	for _, c := range []byte(wl.Run) {
		h = (h ^ uint32(c)) * 16777619
	}
	return fmt.Sprintf("%08x", h)
}

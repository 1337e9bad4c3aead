package gitstore

import (
	"context"
	"fmt"
	"github.com/go-git/go-git/v5/plumbing"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/schema"
)

// git runs the git CLI in the repository and returns its trimmed output.
func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testAuthor = Signature{Name: "Ada Lovelace", Email: "ada@example.com"}

// newDeployment makes a valid docker deployment.
func newDeployment(n int, clusterID, name string) *schema.Deployment {
	img := "nginx:1.27"
	replicas := int64(1)
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return &schema.Deployment{
		APIVersion: schema.APIVersion, Kind: schema.KindDeployment,
		Metadata: schema.Metadata{
			ID:        fmt.Sprintf("00000000-0000-7000-8000-%012d", n),
			UserID:    "00000000-0000-7000-8000-aaaaaaaaaaaa",
			CreatedAt: ts, UpdatedAt: ts,
		},
		Spec: schema.Spec{ClusterID: clusterID, Name: name, AppType: schema.AppWebApp,
			DeploymentType: schema.TypeDocker, DockerImage: &img, Replicas: &replicas},
	}
}

const testCluster = "11111111-1111-4111-8111-111111111111"

// createMutation writes d unless its name is taken on its cluster.
func createMutation(d *schema.Deployment) Mutation {
	write := writeMutation(d, "create")
	return func(v *View) (*Commit, error) {
		if v.DeploymentByName(d.Spec.ClusterID, d.Spec.Name) != nil {
			return nil, errNameTaken
		}
		return write(v)
	}
}

var errNameTaken = fmt.Errorf("name taken")

// updateMutation writes d over its file.
func updateMutation(d *schema.Deployment) Mutation { return writeMutation(d, "update") }

// writeMutation writes d to its file, with the commit message of action.
func writeMutation(d *schema.Deployment, action string) Mutation {
	return func(v *View) (*Commit, error) {
		content, err := schema.EncodeFile(d)
		if err != nil {
			return nil, err
		}
		return &Commit{
			Author:  testAuthor,
			Message: Message("deployment "+d.Spec.Name+": "+action, "", Trailer{"Deployment-Id", d.Metadata.ID}),
			Changes: []Change{{Path: DeploymentPath(d.Spec.ClusterID, d.Spec.Name), Content: content, Value: d}},
		}, nil
	}
}

func mustApply(t testing.TB, s *Store, m Mutation) *Result {
	t.Helper()
	res, err := s.Apply(context.Background(), m)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func encodeForTest(d *schema.Deployment) ([]byte, error) { return schema.EncodeFile(d) }

// ZeroHashForTest is the empty repository's "commit".
var ZeroHashForTest = plumbingZero()

func plumbingZero() plumbing.Hash { return plumbing.ZeroHash }

// packOthers writes n packs as git would leave them (a push, a gc): the
// i-th holds the objects of the commits main~(per*i+per)..main~(per*i).
func packOthers(t testing.TB, dir string, n, per int) {
	t.Helper()
	for i := range n {
		objs := runGit(t, dir, "rev-list", "--objects", fmt.Sprintf("main~%d..main~%d", per*i+per, per*i))
		cmd := exec.Command("git", "-C", dir, "pack-objects", "-q", "objects/pack/pack")
		cmd.Stdin = strings.NewReader(objs + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git pack-objects: %v\n%s", err, out)
		}
	}
}

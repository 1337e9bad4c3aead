package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// Seed describes a seeded repository.
type Seed struct {
	Dir        string
	Key        string   // API key of the seeded user
	UserID     string   // the user owning every deployment
	ClusterIDs []string // the seeded clusters
	// Deployments is how many deployments were seeded; the i-th has the id
	// ID(i). (Counted, not listed: the benchmark shares its process with
	// the store it measures.)
	Deployments int
}

// ID is the id of the i-th seeded deployment.
func (s *Seed) ID(i int) string { return seedID(i) }

// SeedRepo creates a bare repository at dir holding one user (with a known
// key), clusters clusters and n deployments spread evenly over them, in one
// commit written by `git fast-import` (fast: no per-file commit).
func SeedRepo(ctx context.Context, dir string, n, clusters int) (*Seed, error) {
	if clusters < 1 {
		clusters = 1
	}
	if out, err := exec.CommandContext(ctx, "git", "init", "-q", "--bare", "-b", "main", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("git init: %v: %s", err, out)
	}
	key, err := registry.NewKey()
	if err != nil {
		return nil, err
	}
	ts := seedTime
	s := &Seed{Dir: dir, Key: key, UserID: "00000000-0000-7000-8000-00000000bbbb"}
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "fast-import", "--quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git fast-import: %w", err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	msg := fmt.Sprintf("seed: %d deployments on %d clusters", n, clusters)
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter Seed <seed@mengi.local> %d +0000\ndata %d\n%s\n", ts.Unix(), len(msg), msg)
	file := func(path string, content []byte) {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", path, len(content))
		w.Write(content)
		w.WriteString("\n")
	}
	user := &schema.User{APIVersion: schema.APIVersion, Kind: schema.KindUser, ID: s.UserID, Name: "Bench", Email: "bench@example.com",
		CreatedAt: ts, Keys: []schema.APIKey{{Prefix: key[:8], SHA256: registry.HashKey(key), CreatedAt: ts}}}
	b, err := schema.EncodeRecord(user)
	if err != nil {
		return nil, err
	}
	file(gitstore.UserPath(user.ID), b)
	for c := range clusters {
		cl := &schema.Cluster{APIVersion: schema.APIVersion, Kind: schema.KindCluster,
			ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", c), Name: fmt.Sprintf("cluster-%d", c), CreatedAt: ts}
		s.ClusterIDs = append(s.ClusterIDs, cl.ID)
		b, err := schema.EncodeRecord(cl)
		if err != nil {
			return nil, err
		}
		file(gitstore.ClusterPath(cl.ID), b)
	}
	for i := range n {
		d := seedDeployment(i, s.UserID, s.ClusterIDs)
		b, err := schema.EncodeFile(d)
		if err != nil {
			return nil, err
		}
		file(gitstore.DeploymentPath(d.Spec.ClusterID, d.Spec.Name), b)
		s.Deployments++
	}
	w.WriteString("done\n")
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("git fast-import: %w", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git fast-import: %w", err)
	}
	return s, nil
}

// SeedFile is where a benchmark that keeps its repository records how it
// was seeded, beside the repository.
const SeedFile = "seed.json"

// Save writes the seed's description to file.
func (s *Seed) Save(file string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save seed: %w", err)
	}
	return nil
}

// LoadSeed reads a seed description written by Save.
func LoadSeed(file string) (*Seed, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load seed: %w", err)
	}
	var s struct {
		Seed
		IDs []string // how seeds written before Deployments listed them
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("load seed %s: %w", file, err)
	}
	if s.Deployments == 0 {
		s.Deployments = len(s.IDs)
	}
	return &s.Seed, nil
}

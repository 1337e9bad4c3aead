package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Record kinds other than Deployment that live in the repository.
const (
	KindUser    = "User"
	KindCluster = "Cluster"
)

// User is an API user, stored at `users/<id>.yaml`. Only the SHA-256 of each
// key is kept; the key itself is shown once, when it is made. GitAccess
// lets the user's keys clone and push the deployments repository over the
// server's git endpoint (package githttp); only an operator grants it
// (`mengi keys add --git-access`), and it is left out of the file when
// false.
type User struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	GitAccess  bool      `json:"git_access,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	Keys       []APIKey  `json:"keys,omitempty"`
}

// APIKey is the stored form of a bearer key: its id and name, its first
// characters (to tell keys apart in a listing), the hex SHA-256 of the
// whole key, and when it stops working (never when nil).
type APIKey struct {
	ID        string     `json:"id,omitempty"`
	Name      string     `json:"name,omitempty"`
	Prefix    string     `json:"prefix"`
	SHA256    string     `json:"sha256"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// KeyID is the key's id; a key made before keys had ids is named by the
// first 16 hex digits of its SHA-256.
func (k *APIKey) KeyID() string {
	if k.ID != "" {
		return k.ID
	}
	return k.SHA256[:min(16, len(k.SHA256))]
}

// Expired reports whether the key no longer works at now.
func (k *APIKey) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// KeyCreate is a validated body of `POST /keys`.
type KeyCreate struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Cluster is a Kubernetes cluster deployments may target, stored at
// `clusters/<id>.yaml` beside the folder of its deployments. Kubeconfig is a
// path on the agent's machine (credentials never go into Git). An empty
// Users list lets every user deploy to the cluster. AllowPrivileged lets
// deployments on it run privileged pods and pods that use the host's
// namespaces, paths or ports (Pod Security "privileged" instead of
// "baseline"); without it the agent refuses them.
type Cluster struct {
	APIVersion      string         `json:"apiVersion"`
	Kind            string         `json:"kind"`
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Kubeconfig      string         `json:"kubeconfig,omitempty"`
	Context         string         `json:"context,omitempty"`
	Provider        string         `json:"provider,omitempty"`
	Region          string         `json:"region,omitempty"`
	Domain          string         `json:"domain,omitempty"`
	Users           []string       `json:"users,omitempty"`
	AllowPrivileged bool           `json:"allow_privileged,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
	Status          *ClusterStatus `json:"status,omitempty"`
}

// ClusterStatus is the agent's view of a cluster: its reachability, and a
// mass removal it holds back.
type ClusterStatus struct {
	ClusterStatus string     `json:"cluster_status,omitempty"`
	ClusterError  string     `json:"cluster_error,omitempty"`
	CheckedAt     *time.Time `json:"checked_at,omitempty"`
	PruneHold     *PruneHold `json:"prune_hold,omitempty"`
}

// PruneHold is a removal of many of a cluster's deployments (their files
// gone from the repository) that the agent holds back until an operator
// confirms it (`mengi prune --confirm COMMIT`).
type PruneHold struct {
	// Commit is the head at which the agent found the files gone.
	Commit string `json:"commit"`
	// Releases are the releases it would remove, as namespace/name.
	Releases []string `json:"releases"`
	// Of is how many deployments the cluster had before the removal.
	Of int `json:"of"`
	// Confirmed is set by an operator: the agent then removes Releases.
	Confirmed bool `json:"confirmed,omitempty"`
	// Since is when the agent first held it.
	Since time.Time `json:"since"`
}

// Allows reports whether the user with this email may deploy to c. Emails
// compare without regard to case, as the store looks users up.
func (c *Cluster) Allows(email string) bool {
	if len(c.Users) == 0 {
		return true
	}
	for _, u := range c.Users {
		if strings.EqualFold(u, email) {
			return true
		}
	}
	return false
}

// EncodeRecord renders a user or cluster record as YAML with the key order
// of its Go type.
func EncodeRecord(v any) ([]byte, error) {
	node, err := toNode(v)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return encodeNode(node)
}

// DecodeRecord reads a user or cluster record, refusing unknown keys.
func DecodeRecord(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	if err := strictJSON(j, v); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}

func strictJSON(j []byte, v any) error {
	dec := json.NewDecoder(bytesReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

package schema

import "time"

// AppType says what kind of application a deployment is; it decides the
// probes, ports, persistence and ingress of the built-in chart.
type AppType string

// The app types of Mengi's API.
const (
	AppWebApp     AppType = "web_app"
	AppAPI        AppType = "api"
	AppDatabase   AppType = "database"
	AppStaticSite AppType = "static_site"
	AppContainer  AppType = "container"
	AppHelm       AppType = "helm"
)

// DeploymentType says where the Kubernetes objects come from: the built-in
// chart around a Docker image, or a user's Helm chart.
type DeploymentType string

// The deployment types of Mengi's API.
const (
	TypeDocker DeploymentType = "docker"
	TypeHelm   DeploymentType = "helm"
)

// Phase is a deployment's status in Mengi's API (`DeploymentStatus`).
type Phase string

// The phases of the status lifecycle.
const (
	PhasePending      Phase = "pending"
	PhaseProvisioning Phase = "provisioning"
	PhasePromoting    Phase = "promoting"
	PhaseRunning      Phase = "running"
	PhaseStopped      Phase = "stopped"
	PhaseFailed       Phase = "failed"
	PhaseError        Phase = "error"
	PhaseMigrating    Phase = "migrating"
	PhaseDeleting     Phase = "deleting"
)

// EnvironmentVariable is one entry of environment_variables: exactly one of
// Value and SecretRef is set. SecretRef is `<secret-name>/<key>`.
type EnvironmentVariable struct {
	Name      string  `json:"name"`
	Value     *string `json:"value,omitempty"`
	SecretRef *string `json:"secret_ref,omitempty"`
}

// Volume is one entry of volumes: a persistent volume mounted at Path.
type Volume struct {
	Path    string  `json:"path"`
	SizeGb  int64   `json:"sizeGb"`
	Purpose *string `json:"purpose,omitempty"`
}

// DefaultVolumeSizeGb is the size of a volume whose sizeGb is not given.
const DefaultVolumeSizeGb = 10

// Spec is what a user asks for: the body of DeploymentCreate, and the `spec`
// block of the file in Git. Nil pointers are fields that were not set.
type Spec struct {
	ClusterID             string                `json:"cluster_id"`
	Name                  string                `json:"name"`
	AppType               AppType               `json:"app_type"`
	DeploymentType        DeploymentType        `json:"deployment_type"`
	DockerImage           *string               `json:"docker_image,omitempty"`
	Replicas              *int64                `json:"replicas,omitempty"`
	CPURequest            *float64              `json:"cpu_request,omitempty"`
	MemoryRequestMB       *int64                `json:"memory_request_mb,omitempty"`
	ContainerPort         *int64                `json:"container_port,omitempty"`
	RunAsUID              *int64                `json:"run_as_uid,omitempty"`
	StorageSizeGB         *int64                `json:"storage_size_gb,omitempty"`
	Volumes               []Volume              `json:"volumes,omitempty"`
	EnvironmentVariables  []EnvironmentVariable `json:"environment_variables,omitempty"`
	Config                map[string]any        `json:"config,omitempty"`
	HelmRepoURL           *string               `json:"helm_repo_url,omitempty"`
	HelmChartName         *string               `json:"helm_chart_name,omitempty"`
	HelmChartVersion      *string               `json:"helm_chart_version,omitempty"`
	CustomValuesYAML      *string               `json:"custom_values_yaml,omitempty"`
	ImageUpdateStrategy   *string               `json:"image_update_strategy,omitempty"`
	ImageUpdateConstraint *string               `json:"image_update_constraint,omitempty"`
	ImageAllowTags        *string               `json:"image_allow_tags,omitempty"`
	ImageIgnoreTags       *string               `json:"image_ignore_tags,omitempty"`
}

// Metadata identifies a deployment and records who made it and when. The API
// writes it; the agent never changes it.
type Metadata struct {
	ID                  string     `json:"id"`
	UserID              string     `json:"user_id"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	DeletionRequestedAt *time.Time `json:"deletion_requested_at,omitempty"`
}

// Status is what the agent last observed. Only the agent writes it.
type Status struct {
	Phase         Phase      `json:"phase"`
	Reason        string     `json:"reason,omitempty"`
	ErrorMessage  string     `json:"error_message,omitempty"`
	EndpointURL   string     `json:"endpoint_url,omitempty"`
	ValuesYAML    string     `json:"values_yaml,omitempty"`
	SpecDigest    string     `json:"spec_digest,omitempty"`
	AppliedCommit string     `json:"applied_commit,omitempty"`
	AppliedAt     *time.Time `json:"applied_at,omitempty"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
	// Drift says what the agent last found changed by hand on the cluster
	// and restored, and when.
	Drift            string     `json:"drift,omitempty"`
	DriftCorrectedAt *time.Time `json:"drift_corrected_at,omitempty"`
}

// Deployment is the whole file stored in Git for one deployment.
type Deployment struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
	Status     *Status  `json:"status,omitempty"`
}

// APIVersion and KindDeployment head every deployment file.
const (
	APIVersion     = "mengi.cloud/v1"
	KindDeployment = "Deployment"
)

// Phase is the deployment's status as the API reports it: `deleting` once a
// deletion was requested, `pending` until the agent has observed the current
// spec, and otherwise the phase the agent last wrote.
func (d *Deployment) Phase() Phase {
	if d.Metadata.DeletionRequestedAt != nil {
		return PhaseDeleting
	}
	if d.Status == nil || d.Status.Phase == "" {
		return PhasePending
	}
	if d.Status.SpecDigest != "" && d.Status.SpecDigest != d.Spec.Digest() {
		return PhasePending
	}
	return d.Status.Phase
}

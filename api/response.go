package api

import (
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/schema"
)

// DeploymentResponse is Mengi's DeploymentResponse, plus docker_image,
// environment_variables, volumes and run_as_uid so that a client reads back
// everything it can send. Optional fields are present with null.
type DeploymentResponse struct {
	ID                    string           `json:"id"`
	UserID                string           `json:"user_id"`
	ClusterID             string           `json:"cluster_id"`
	Name                  string           `json:"name"`
	AppType               schema.AppType   `json:"app_type"`
	Status                schema.Phase     `json:"status"`
	Config                map[string]any   `json:"config"`
	ValuesYAML            *string          `json:"values_yaml"`
	GitPath               *string          `json:"git_path"`
	EndpointURL           *string          `json:"endpoint_url"`
	ErrorMessage          *string          `json:"error_message"`
	CPURequest            *float64         `json:"cpu_request"`
	MemoryRequestMB       *int64           `json:"memory_request_mb"`
	Replicas              *int64           `json:"replicas"`
	ContainerPort         *int64           `json:"container_port"`
	StorageSizeGB         *int64           `json:"storage_size_gb"`
	DeploymentType        *string          `json:"deployment_type"`
	HelmRepoURL           *string          `json:"helm_repo_url"`
	HelmChartName         *string          `json:"helm_chart_name"`
	HelmChartVersion      *string          `json:"helm_chart_version"`
	CustomValuesYAML      *string          `json:"custom_values_yaml"`
	ImageUpdateStrategy   *string          `json:"image_update_strategy"`
	ImageUpdateConstraint *string          `json:"image_update_constraint"`
	ImageAllowTags        *string          `json:"image_allow_tags"`
	ImageIgnoreTags       *string          `json:"image_ignore_tags"`
	IsAdopted             bool             `json:"is_adopted"`
	SourceNamespace       *string          `json:"source_namespace"`
	CreatedAt             time.Time        `json:"created_at"`
	UpdatedAt             time.Time        `json:"updated_at"`
	Provider              *string          `json:"provider"`
	Region                *string          `json:"region"`
	ClusterStatus         *string          `json:"cluster_status"`
	ClusterError          *string          `json:"cluster_error"`
	DockerImage           *string          `json:"docker_image"`
	EnvironmentVariables  []EnvVarResponse `json:"environment_variables"`
	Volumes               []VolumeResponse `json:"volumes"`
	RunAsUID              *int64           `json:"run_as_uid"`
}

// EnvVarResponse is an environment variable with both value and secret_ref
// present (one of them null).
type EnvVarResponse struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	SecretRef *string `json:"secret_ref"`
}

// VolumeResponse is a volume with purpose present (possibly null).
type VolumeResponse struct {
	Path    string  `json:"path"`
	SizeGb  int64   `json:"sizeGb"`
	Purpose *string `json:"purpose"`
}

// HistoryResponse is one commit of a deployment's history.
type HistoryResponse struct {
	SHA         string    `json:"sha"`
	Author      string    `json:"author"`
	AuthorEmail string    `json:"author_email"`
	Time        time.Time `json:"time"`
	Message     string    `json:"message"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deploymentResponse renders a record of owner's; cluster may be nil.
func deploymentResponse(rec *gitstore.Record, cluster *schema.Cluster, owner *schema.User) DeploymentResponse {
	d := rec.Deployment()
	s := d.Spec
	dt := string(s.DeploymentType)
	out := DeploymentResponse{
		ID: d.Metadata.ID, UserID: d.Metadata.UserID, ClusterID: s.ClusterID, Name: s.Name,
		AppType: s.AppType, Status: rec.Phase(), Config: s.Config, GitPath: strPtr(rec.Path),
		CPURequest: s.CPURequest, MemoryRequestMB: s.MemoryRequestMB, Replicas: s.Replicas,
		ContainerPort: s.ContainerPort, StorageSizeGB: s.StorageSizeGB, DeploymentType: &dt,
		HelmRepoURL: s.HelmRepoURL, HelmChartName: s.HelmChartName, HelmChartVersion: s.HelmChartVersion,
		CustomValuesYAML: s.CustomValuesYAML, ImageUpdateStrategy: s.ImageUpdateStrategy,
		ImageUpdateConstraint: s.ImageUpdateConstraint, ImageAllowTags: s.ImageAllowTags,
		ImageIgnoreTags: s.ImageIgnoreTags, CreatedAt: d.Metadata.CreatedAt, UpdatedAt: d.Metadata.UpdatedAt,
		DockerImage: s.DockerImage, RunAsUID: s.RunAsUID,
	}
	if st := d.Status; st != nil {
		out.ValuesYAML, out.EndpointURL, out.ErrorMessage = strPtr(st.ValuesYAML), strPtr(st.EndpointURL), strPtr(st.ErrorMessage)
	}
	if rec.Err() != nil {
		// The file in Git is invalid now (an engineer's push): the spec shown
		// is the last valid one, the error is the file's.
		out.ErrorMessage = strPtr(rec.Err().Error())
	}
	if err := denied(cluster, owner, s.ClusterID); err != nil && out.Status != schema.PhaseDeleting {
		// The agent applies nothing the registry does not admit, and says
		// so in the file; the response says it at once.
		out.Status, out.ErrorMessage = schema.PhaseError, strPtr(err.Error())
	}
	if cluster != nil {
		out.Provider, out.Region = strPtr(cluster.Provider), strPtr(cluster.Region)
		if cs := cluster.Status; cs != nil {
			out.ClusterStatus, out.ClusterError = strPtr(cs.ClusterStatus), strPtr(cs.ClusterError)
		}
	}
	if s.EnvironmentVariables != nil {
		out.EnvironmentVariables = make([]EnvVarResponse, len(s.EnvironmentVariables))
		for i, e := range s.EnvironmentVariables {
			out.EnvironmentVariables[i] = EnvVarResponse{Name: e.Name, Value: e.Value, SecretRef: e.SecretRef}
		}
	}
	if s.Volumes != nil {
		out.Volumes = make([]VolumeResponse, len(s.Volumes))
		for i, v := range s.Volumes {
			out.Volumes[i] = VolumeResponse{Path: v.Path, SizeGb: v.SizeGb, Purpose: v.Purpose}
		}
	}
	return out
}

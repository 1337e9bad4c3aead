package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/mengi-cloud/gitops/schema"
)

// appValues is the values document of the built-in chart: every decision
// about a Docker deployment is made here, in Go, and written out as an
// explicit value, so values_yaml alone says what the chart will make. The
// chart only turns values into objects (README.md has the table).
type appValues struct {
	Name         string             `json:"name"`
	DeploymentID string             `json:"deploymentId"`
	Workload     string             `json:"workload"`
	Strategy     string             `json:"strategy,omitempty"`
	Image        string             `json:"image"`
	Replicas     int64              `json:"replicas"`
	Command      []string           `json:"command,omitempty"`
	Args         []string           `json:"args,omitempty"`
	Port         *int64             `json:"port,omitempty"`
	PortName     string             `json:"portName,omitempty"`
	HealthCheck  *healthCheck       `json:"healthCheck,omitempty"`
	Resources    *resources         `json:"resources,omitempty"`
	RunAsUser    *int64             `json:"runAsUser,omitempty"`
	Env          map[string]string  `json:"env,omitempty"`
	SecretEnv    map[string]*keyRef `json:"secretEnv,omitempty"`
	Volumes      []volume           `json:"volumes,omitempty"`
	Ingress      *ingress           `json:"ingress,omitempty"`
}

type healthCheck struct {
	Type string `json:"type"` // http or tcp
	Path string `json:"path,omitempty"`
}

type resources struct {
	Requests map[string]string `json:"requests"`
}

type keyRef struct {
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

type volume struct {
	Name      string `json:"name"`
	ClaimName string `json:"claimName"`
	MountPath string `json:"mountPath"`
	Size      string `json:"size"`
	Purpose   string `json:"purpose,omitempty"`
}

type ingress struct {
	Host          string `json:"host"`
	ClusterIssuer string `json:"clusterIssuer"`
	TLSSecretName string `json:"tlsSecretName"`
}

// The kinds of workload the built-in chart makes.
const (
	workloadDeployment  = "Deployment"
	workloadStatefulSet = "StatefulSet"
)

// appTypeRules is what an app_type changes in the built-in chart.
type appTypeRules struct {
	workload    string
	portName    string // the name of the container and Service port
	ingress     bool   // an Ingress unless config.ingress says otherwise
	defaultPath string // HTTP health check path when config has none
	tcpProbe    bool   // a TCP health check when there is no HTTP path
}

var rulesByAppType = map[schema.AppType]appTypeRules{
	schema.AppWebApp:     {workload: workloadDeployment, portName: "http", ingress: true, tcpProbe: true},
	schema.AppAPI:        {workload: workloadDeployment, portName: "http", ingress: true, tcpProbe: true},
	schema.AppStaticSite: {workload: workloadDeployment, portName: "http", ingress: true, defaultPath: "/"},
	schema.AppDatabase:   {workload: workloadStatefulSet, portName: "tcp", tcpProbe: true},
	schema.AppContainer:  {workload: workloadDeployment, portName: "tcp"},
	// A Docker deployment of app_type helm is rendered like a container.
	schema.AppHelm: {workload: workloadDeployment, portName: "tcp"},
}

// dockerValues decides the built-in chart's values for a Docker deployment
// on a cluster whose apps live under domain ("" for none). It refuses, with
// InvalidSpec, combinations the JSON Schema lets through but the chart
// cannot honour.
func dockerValues(d *schema.Deployment, domain, issuer string) (*appValues, error) {
	s := &d.Spec
	rules, ok := rulesByAppType[s.AppType]
	if !ok {
		return nil, invalidSpec("app_type", "unknown app_type %q", s.AppType)
	}
	if s.DockerImage == nil || *s.DockerImage == "" {
		return nil, invalidSpec("docker_image", "a Docker deployment needs docker_image")
	}
	v := &appValues{
		Name:         s.Name,
		DeploymentID: d.Metadata.ID,
		Workload:     rules.workload,
		Image:        *s.DockerImage,
		Replicas:     1,
		Command:      configStrings(s.Config, "command"),
		Args:         configStrings(s.Config, "args"),
		RunAsUser:    s.RunAsUID,
	}
	if s.Replicas != nil {
		v.Replicas = *s.Replicas
	}

	if s.ContainerPort != nil {
		v.Port, v.PortName = s.ContainerPort, rules.portName
	}
	healthPath, _ := s.Config["health_check_path"].(string)
	switch {
	case healthPath != "" && v.Port == nil:
		return nil, invalidSpec("config.health_check_path", "a health check needs container_port")
	case v.Port == nil:
	case healthPath != "":
		v.HealthCheck = &healthCheck{Type: "http", Path: healthPath}
	case rules.defaultPath != "":
		v.HealthCheck = &healthCheck{Type: "http", Path: rules.defaultPath}
	case rules.tcpProbe:
		v.HealthCheck = &healthCheck{Type: "tcp"}
	}

	wantIngress := rules.ingress
	if b, set := s.Config["ingress"].(bool); set {
		if b && v.Port == nil {
			return nil, invalidSpec("config.ingress", "an Ingress needs container_port")
		}
		wantIngress = b
	}
	if wantIngress && v.Port != nil && domain != "" {
		v.Ingress = &ingress{Host: s.Name + "." + domain, ClusterIssuer: issuer, TLSSecretName: s.Name + "-tls"}
	}

	if s.CPURequest != nil || s.MemoryRequestMB != nil {
		v.Resources = &resources{Requests: map[string]string{}}
		if s.CPURequest != nil {
			v.Resources.Requests["cpu"] = milliCPU(*s.CPURequest)
		}
		if s.MemoryRequestMB != nil {
			v.Resources.Requests["memory"] = strconv.FormatInt(*s.MemoryRequestMB, 10) + "Mi"
		}
	}

	for _, ev := range s.EnvironmentVariables {
		switch {
		case ev.Value != nil:
			if v.Env == nil {
				v.Env = map[string]string{}
			}
			v.Env[ev.Name] = *ev.Value
		case ev.SecretRef != nil:
			secret, key, ok := strings.Cut(*ev.SecretRef, "/")
			if !ok || secret == "" || key == "" {
				return nil, invalidSpec("environment_variables", "%s: secret_ref %q is not <secret-name>/<key>", ev.Name, *ev.SecretRef)
			}
			if v.SecretEnv == nil {
				v.SecretEnv = map[string]*keyRef{}
			}
			v.SecretEnv[ev.Name] = &keyRef{Secret: secret, Key: key}
		}
	}

	if s.StorageSizeGB != nil {
		v.Volumes = append(v.Volumes, volume{Name: "data", ClaimName: s.Name + "-data",
			MountPath: s.StorageMountPath(), Size: gibibytes(*s.StorageSizeGB)})
	}
	for _, vol := range s.Volumes {
		size := vol.SizeGb
		if size == 0 {
			size = schema.DefaultVolumeSizeGb
		}
		id := pathID(vol.Path)
		purpose := ""
		if vol.Purpose != nil {
			purpose = *vol.Purpose
		}
		v.Volumes = append(v.Volumes, volume{Name: "vol-" + id, ClaimName: claimName(s.Name, vol.Path, id),
			MountPath: vol.Path, Size: gibibytes(size), Purpose: purpose})
	}
	if (v.Port != nil || v.Workload == workloadStatefulSet) && !startsWithLetter(s.Name) {
		// A deployment's name is a DNS-1123 label, which may start with a
		// digit; a Service's name is a DNS-1035 label before Kubernetes
		// relaxed it (RelaxedServiceNameValidation), and Helm's lint still
		// says so.
		return nil, invalidSpec("name", "%q starts with a digit, which Kubernetes refuses in a Service name (DNS-1035) on many versions: rename the deployment to start with a letter", s.Name)
	}
	if v.Workload == workloadStatefulSet && len(v.Volumes) > 0 && v.Replicas > 1 {
		return nil, invalidSpec("replicas", "a database with storage runs at most 1 replica: its pods would share one volume (%d asked)", v.Replicas)
	}
	if v.Workload == workloadDeployment {
		// Pods that mount volumes are replaced, not rolled: the new pod
		// must not start while the old one still writes the same files
		// (or holds a ReadWriteOnce volume on another node).
		v.Strategy = "RollingUpdate"
		if len(v.Volumes) > 0 {
			v.Strategy = "Recreate"
		}
	}
	return v, nil
}

// configStrings returns config[key] as a list of strings (nil when unset).
func configStrings(config map[string]any, key string) []string {
	list, _ := config[key].([]any)
	var out []string
	for _, item := range list {
		if s, ok := item.(string); ok {
			out = append(out, s)
		}
	}
	if out == nil {
		if ss, ok := config[key].([]string); ok {
			out = ss
		}
	}
	return out
}

// milliCPU writes cores as a Kubernetes quantity in millicores, rounded to
// the nearest millicore and at least 1m.
func milliCPU(cores float64) string {
	m := int64(math.Round(cores * 1000))
	return strconv.FormatInt(max(m, 1), 10) + "m"
}

// gibibytes writes a size in GB as a Kubernetes quantity; Mengi's "GB" are
// GiB, as Kubernetes storage classes size volumes.
func gibibytes(gb int64) string { return strconv.FormatInt(gb, 10) + "Gi" }

// pathID is a short, stable id of a mount path.
func pathID(p string) string {
	sum := sha256.Sum256([]byte(path.Clean(p)))
	return hex.EncodeToString(sum[:4])
}

// claimName names the PersistentVolumeClaim of a volume after the
// deployment and its mount path, so that adding or removing another volume
// never renames it: "<name>-<path as a label>-<pathID>", at most 63
// characters ("docs-usr-share-nginx-html-1a2b3c4d").
func claimName(name, p, id string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(p) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	slug := b.String()
	if room := 63 - len(name) - len(id) - 2; len(slug) > room {
		slug = strings.TrimRight(slug[:max(room, 0)], "-")
	}
	if slug == "" {
		return fmt.Sprintf("%s-%s", name, id)
	}
	return fmt.Sprintf("%s-%s-%s", name, slug, id)
}

func startsWithLetter(name string) bool { return name != "" && name[0] >= 'a' && name[0] <= 'z' }

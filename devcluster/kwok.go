package devcluster

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kwokFiles holds kwok.yaml (the KwokConfiguration) and the Stage documents
// copied from sigs.k8s.io/kwok; see kwok/README.md.
//
//go:embed kwok/*.yaml
var kwokFiles embed.FS

// Names shared with the kwok flags and the objects Start creates.
const (
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
	// StorageClass is the default StorageClass; kwok's volume stages bind
	// PVCs of this class to PersistentVolumes they create.
	StorageClass    = "kwok-volume"
	kwokProvisioner = "kwok.x-k8s.io/volume"
	podCIDR         = "10.244.0.0/16"
	nodeIP          = "10.200.0.1"
	serviceCIDR     = "10.0.0.0/24"
	serviceIP       = "10.0.0.1"
)

// writeKwokConfig writes kwok.yaml followed by every stage into path.
func writeKwokConfig(path string) error {
	cfg, err := kwokFiles.ReadFile("kwok/kwok.yaml")
	if err != nil {
		return err
	}
	stages, err := fs.Glob(kwokFiles, "kwok/*.yaml")
	if err != nil {
		return err
	}
	sort.Strings(stages)
	var buf bytes.Buffer
	buf.Write(cfg)
	for _, s := range stages {
		if s == "kwok/kwok.yaml" {
			continue
		}
		b, err := kwokFiles.ReadFile(s)
		if err != nil {
			return err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("kwok config: %w", err)
	}
	return nil
}

// kwokArgs are the flags of kwok. It serves no port.
func kwokArgs(kubeconfig, config string) []string {
	return []string{
		"--kubeconfig", kubeconfig, "--config", config,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", kwokNodeAnnotation + "=" + kwokNodeValue,
		"--node-lease-duration-seconds", "40",
		"--cidr", podCIDR, "--node-ip", nodeIP,
	}
}

// NodeName returns the name of fake node i.
func NodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// ensureNodes creates the fake nodes that kwok manages; existing ones are
// kept.
func ensureNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	for i := range n {
		name := NodeName(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokNodeAnnotation: kwokNodeValue},
				Labels: map[string]string{
					"type": "kwok", "kubernetes.io/hostname": name,
					"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				},
			},
			Status: corev1.NodeStatus{Capacity: res, Allocatable: res},
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

// ensureStorageClass creates the default StorageClass served by kwok.
func ensureStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	reclaim := corev1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       kwokProvisioner,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &mode,
	}
	_, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create storage class: %w", err)
	}
	return nil
}

// nodesReady reports whether n fake nodes have condition Ready=True.
func nodesReady(cs kubernetes.Interface, n int) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, nd := range nodes.Items {
			for _, c := range nd.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < n {
			return false, fmt.Errorf("%d of %d nodes Ready", ready, n)
		}
		return true, nil
	}
}

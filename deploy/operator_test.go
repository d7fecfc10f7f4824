package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// openTelemetryCollector is the part of the OpenTelemetry Operator's
// opentelemetry.io/v1beta1 OpenTelemetryCollector that operator/ uses, with
// the operator's field names (apis/v1beta1 of open-telemetry/
// opentelemetry-operator). Decoding is strict: a field spelt otherwise, or
// one this type leaves out, fails the test.
type openTelemetryCollector struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Mode                    string                         `json:"mode"`
		Image                   string                         `json:"image"`
		ImagePullPolicy         corev1.PullPolicy              `json:"imagePullPolicy"`
		ServiceAccount          string                         `json:"serviceAccount"`
		HostPID                 bool                           `json:"hostPID"`
		SecurityContext         *corev1.SecurityContext        `json:"securityContext"`
		Env                     []corev1.EnvVar                `json:"env"`
		Resources               corev1.ResourceRequirements    `json:"resources"`
		VolumeMounts            []corev1.VolumeMount           `json:"volumeMounts"`
		Volumes                 []corev1.Volume                `json:"volumes"`
		Tolerations             []corev1.Toleration            `json:"tolerations"`
		NodeSelector            map[string]string              `json:"nodeSelector"`
		DaemonSetUpdateStrategy appsv1.DaemonSetUpdateStrategy `json:"daemonSetUpdateStrategy"`
		Config                  map[string]any                 `json:"config"`
	} `json:"spec"`
}

const operatorFile = "operator/otelcol-ebpf.yaml"

// TestOperatorResource checks that the operator's collector is the chart's
// default agent: same pod settings, same configuration, same RBAC.
func TestOperatorResource(t *testing.T) {
	col, o := readOperatorFile(t)
	_, chart := render(t, nil, nil)
	ds := chart.DaemonSets[agentName]
	pod := ds.Spec.Template.Spec
	c := container(t, pod)
	spec := col.Spec

	equal(t, "apiVersion", col.APIVersion, "opentelemetry.io/v1beta1")
	equal(t, "mode", spec.Mode, "daemonset")
	equal(t, "hostPID", spec.HostPID, true)
	equal(t, "image", spec.Image, c.Image)
	equal(t, "imagePullPolicy", spec.ImagePullPolicy, c.ImagePullPolicy)
	equal(t, "securityContext", spec.SecurityContext, c.SecurityContext)
	checkNarrowSecurity(t, corev1.Container{SecurityContext: spec.SecurityContext}, defaultCaps)
	equal(t, "env", spec.Env, c.Env)
	equal(t, "resources", spec.Resources, c.Resources)
	equal(t, "tolerations", spec.Tolerations, pod.Tolerations)
	equal(t, "nodeSelector", spec.NodeSelector, pod.NodeSelector)
	equal(t, "update strategy", spec.DaemonSetUpdateStrategy, ds.Spec.UpdateStrategy)

	// The operator mounts the configuration itself: every other mount and
	// volume is the chart's.
	var mounts []corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		if m.Name != "config" {
			mounts = append(mounts, m)
		}
	}
	var vols []corev1.Volume
	for _, v := range pod.Volumes {
		if v.Name != "config" {
			vols = append(vols, v)
		}
	}
	equal(t, "volumeMounts", spec.VolumeMounts, mounts)
	equal(t, "volumes", spec.Volumes, vols)

	equal(t, "config", spec.Config, collectorConfig(t, chart.ConfigMaps[agentName]))
	checkComponents(t, spec.Config, distributionComponents(t))
	checkSettings(t, "receivers.ebpf", at(t, spec.Config, "receivers", "ebpf").(map[string]any), receiverSettings(t))
	checkMemory(t, corev1.Container{Resources: spec.Resources, Env: spec.Env}, spec.Config, 80, 25, 80)

	sa := o.ServiceAccounts[spec.ServiceAccount]
	if sa == nil {
		t.Fatalf("no ServiceAccount %q in %s", spec.ServiceAccount, operatorFile)
	}
	if sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount must mount its token: the operator's pod spec cannot ask for it")
	}
	equal(t, "ClusterRole rules", o.ClusterRoles[agentName].Rules, chart.ClusterRoles[agentName].Rules)
	crb := o.ClusterRoleBindings[agentName]
	if crb == nil {
		t.Fatalf("no ClusterRoleBinding %s", agentName)
	}
	equal(t, "roleRef", crb.RoleRef, chart.ClusterRoleBindings[agentName].RoleRef)
	equal(t, "subject", crb.Subjects[0].Name, spec.ServiceAccount)
	equal(t, "subject namespace", crb.Subjects[0].Namespace, col.Namespace)
}

// readOperatorFile decodes every document of the operator file strictly.
func readOperatorFile(t *testing.T) (openTelemetryCollector, *objects) {
	t.Helper()
	b, err := os.ReadFile(operatorFile)
	if err != nil {
		t.Fatal(err)
	}
	var col openTelemetryCollector
	found := 0
	var others bytes.Buffer
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		if tm.Kind != "OpenTelemetryCollector" {
			others.WriteString("---\n")
			others.Write(doc)
			continue
		}
		if err := strictDecode(doc, &col); err != nil {
			t.Fatalf("OpenTelemetryCollector: %v", err)
		}
		found++
	}
	if found != 1 {
		t.Fatalf("%s holds %d OpenTelemetryCollector resources, want 1", operatorFile, found)
	}
	o, err := decodeAll(others.Bytes())
	if err != nil {
		t.Fatalf("%s: %v", operatorFile, err)
	}
	return col, o
}

package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"

import (
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and annotations the API enrichment reads.
const (
	labelInstance        = "app.kubernetes.io/instance"
	labelName            = "app.kubernetes.io/name"
	labelVersion         = "app.kubernetes.io/version"
	labelPodTemplateHash = "pod-template-hash"
	// annotationMirror is the uid of the static pod a mirror pod stands for:
	// the uid its containers' cgroups carry.
	annotationMirror = "kubernetes.io/config.mirror"
	// annotationResource prefixes annotations that are resource attributes
	// (semantic conventions, "Resource attributes in K8s").
	annotationResource = "resource.opentelemetry.io/"
)

// Bounds on what a pod keeps of its resource annotations: a pod with a
// thousand of them keeps the first few, and none of a huge value.
const (
	maxResourceAnnotations = 32
	maxAnnotationValue     = 1024
)

// PodInfo is what the API says of a process's pod and container. An empty
// field is a fact the API did not give for sure.
type PodInfo struct {
	UID       string // the pod's API uid (a mirror pod's differs from its static pod's)
	Name      string
	Namespace string
	NodeName  string

	ContainerName    string // "" when the container's id is not in the pod's status (yet)
	ContainerRuntime string // from the status' "<runtime>://<id>"

	Owners Owners

	// ServiceName and ServiceNamespace are derived by the semantic
	// conventions' Kubernetes rules (see [Watcher]); ServiceVersion only
	// from the pod's annotation or app.kubernetes.io/version label.
	ServiceName      string
	ServiceNamespace string
	ServiceVersion   string

	// Attributes are the pod's other resource.opentelemetry.io/<key>
	// annotations, key without the prefix.
	Attributes map[string]string
}

// Owners are the workloads a pod belongs to, each a name with its uid. A
// Deployment is named only when its ReplicaSet's owner says so or, until
// the ReplicaSet is read, when the pod's pod-template-hash label proves the
// ReplicaSet's name is "<deployment>-<hash>" (then without a uid). A
// CronJob is named only by its Job's owner.
type Owners struct {
	DeploymentName, DeploymentUID   string
	ReplicaSetName, ReplicaSetUID   string
	StatefulSetName, StatefulSetUID string
	DaemonSetName, DaemonSetUID     string
	JobName, JobUID                 string
	CronJobName, CronJobUID         string
}

// Fill puts the pod's facts into a resource's attributes, the
// annotation-declared ones first so that the API's own win. It puts no
// service.* attribute: see FillService.
func (p PodInfo) Fill(attrs pcommon.Map) {
	for k, v := range p.Attributes {
		attrs.PutStr(k, v)
	}
	putNonEmpty(attrs, AttrPodName, p.Name)
	putNonEmpty(attrs, AttrNamespace, p.Namespace)
	putNonEmpty(attrs, AttrNodeName, p.NodeName)
	putNonEmpty(attrs, AttrContainerName, p.ContainerName)
	putNonEmpty(attrs, AttrContainerRuntime, p.ContainerRuntime)
	o := p.Owners
	putNonEmpty(attrs, AttrDeploymentName, o.DeploymentName)
	putNonEmpty(attrs, AttrDeploymentUID, o.DeploymentUID)
	putNonEmpty(attrs, AttrReplicaSetName, o.ReplicaSetName)
	putNonEmpty(attrs, AttrReplicaSetUID, o.ReplicaSetUID)
	putNonEmpty(attrs, AttrStatefulSetName, o.StatefulSetName)
	putNonEmpty(attrs, AttrStatefulSetUID, o.StatefulSetUID)
	putNonEmpty(attrs, AttrDaemonSetName, o.DaemonSetName)
	putNonEmpty(attrs, AttrDaemonSetUID, o.DaemonSetUID)
	putNonEmpty(attrs, AttrJobName, o.JobName)
	putNonEmpty(attrs, AttrJobUID, o.JobUID)
	putNonEmpty(attrs, AttrCronJobName, o.CronJobName)
	putNonEmpty(attrs, AttrCronJobUID, o.CronJobUID)
}

// FillService puts service.name, service.namespace and service.version,
// those known. The caller applies it only to a process that names no
// service of its own (OTEL_SERVICE_NAME).
func (p PodInfo) FillService(attrs pcommon.Map) {
	putNonEmpty(attrs, AttrServiceName, p.ServiceName)
	putNonEmpty(attrs, AttrServiceNamespace, p.ServiceNamespace)
	putNonEmpty(attrs, AttrServiceVersion, p.ServiceVersion)
}

// podFacts is what the watcher keeps of a pod: the facts lookups read,
// about 1 KB however large the pod's spec, status, managed fields, labels
// and annotations (a pod as the API sends it takes 10 to 30 KB). It stands
// in for the pod in the informer's store (the transform makes one of each
// pod), so it is a runtime.Object whose metadata holds only the pod's
// name, namespace, uid and resource version.
type podFacts struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	nodeName  string
	mirrorUID string // the static pod's uid, for a mirror pod
	owner     ownerFacts
	// Labels that name the service, and the Deployment's hash.
	instance, appName, appVersion, podTemplateHash string
	// resource.opentelemetry.io/<key> annotations, by key.
	resourceAnnotations map[string]string
	containers          []containerFacts
}

// ownerFacts is the pod's controller: group ("apps", "batch"), kind, name, uid.
type ownerFacts struct {
	group, kind, name string
	uid               types.UID
}

// containerFacts is one container of the pod's status (init and ephemeral
// containers included).
type containerFacts struct {
	name, runtime, id string
}

func (p *podFacts) DeepCopyObject() runtime.Object {
	c := *p
	c.ObjectMeta = *p.ObjectMeta.DeepCopy()
	c.resourceAnnotations = maps.Clone(p.resourceAnnotations)
	c.containers = slices.Clone(p.containers)
	return &c
}

// newPodFacts takes from a pod what lookups read.
func newPodFacts(p *corev1.Pod) *podFacts {
	f := &podFacts{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion},
		nodeName:   p.Spec.NodeName,
		mirrorUID:  p.Annotations[annotationMirror],
		instance:   p.Labels[labelInstance], appName: p.Labels[labelName], appVersion: p.Labels[labelVersion],
		podTemplateHash:     p.Labels[labelPodTemplateHash],
		resourceAnnotations: resourceAnnotations(p.Annotations),
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		f.owner = ownerFacts{group: groupOf(ref.APIVersion), kind: ref.Kind, name: ref.Name, uid: ref.UID}
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, s := range list {
			rt, id := splitContainerID(s.ContainerID)
			f.containers = append(f.containers, containerFacts{name: s.Name, runtime: rt, id: id})
		}
	}
	return f
}

// resourceAnnotations keeps the resource.opentelemetry.io/ annotations, at
// most maxResourceAnnotations of them (the first by key, so that the same
// pod always keeps the same ones), none with a huge value.
func resourceAnnotations(in map[string]string) map[string]string {
	var keys []string
	for k, v := range in {
		if strings.HasPrefix(k, annotationResource) && len(k) > len(annotationResource) && len(v) <= maxAnnotationValue {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = keys[:min(len(keys), maxResourceAnnotations)]
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[strings.TrimPrefix(k, annotationResource)] = in[k]
	}
	return out
}

// splitContainerID reads a status' "<runtime>://<id>". kubelet writes the
// runtime's own name ("containerd", "cri-o", "docker"); anything else is
// no runtime name.
func splitContainerID(s string) (runtime, id string) {
	rt, id, ok := strings.Cut(s, "://")
	if !ok {
		return "", s
	}
	if !isDNSLabel(rt) {
		rt = ""
	}
	return rt, id
}

// container finds container id among the pod's.
func (p *podFacts) container(id string) (containerFacts, bool) {
	for _, c := range p.containers {
		if c.id == id && id != "" {
			return c, true
		}
	}
	return containerFacts{}, false
}

// serviceFields derives service.name, service.namespace and service.version
// by the semantic conventions' rules ("Resource attributes in K8s"):
// service.name is the first of the pod's resource.opentelemetry.io/
// service.name annotation, its app.kubernetes.io/instance and
// app.kubernetes.io/name labels (when fromLabels: the conventions ask that
// reading well-known labels be opt-in), and the names of its Deployment,
// ReplicaSet, StatefulSet, DaemonSet, CronJob, Job, pod and container;
// service.namespace is the annotation's, else the pod's namespace;
// service.version the annotation's, else (fromLabels) the
// app.kubernetes.io/version label's.
func serviceFields(p *podFacts, info *PodInfo, fromLabels bool) {
	a := p.resourceAnnotations
	candidates := []string{a[AttrServiceName]}
	if fromLabels {
		candidates = append(candidates, p.instance, p.appName)
	}
	o := info.Owners
	candidates = append(candidates, o.DeploymentName, o.ReplicaSetName, o.StatefulSetName, o.DaemonSetName,
		o.CronJobName, o.JobName, info.Name, info.ContainerName)
	info.ServiceName = first(candidates...)
	info.ServiceNamespace = first(a[AttrServiceNamespace], info.Namespace)
	info.ServiceVersion = a[AttrServiceVersion]
	if fromLabels {
		info.ServiceVersion = first(info.ServiceVersion, p.appVersion)
	}
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// annotationAttributes are the resource.opentelemetry.io/ annotations other
// than the service identity, which serviceFields derives and which must
// never replace the service.instance.id the pidfilter processor matches.
func annotationAttributes(p *podFacts) map[string]string {
	var out map[string]string
	for k, v := range p.resourceAnnotations {
		if strings.HasPrefix(k, "service.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

package k8s

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// A synthetic busy node: 250 pods as real clusters have them, each with an
// init container and three containers (env, ports, mounts, probes,
// resources), ten labels, eight annotations (among them kubectl's 2 KB
// last-applied-configuration), three managed-fields entries and a full
// status. 60% run under 50 Deployments, 15% under StatefulSets, 10% under
// DaemonSets, 10% under CronJobs' Jobs, 5% bare.
const syntheticPods = 250

func syntheticNode(n int) (objs []k8sruntime.Object, uids []string) {
	lastApplied := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"x"},"spec":` + strings.Repeat(`{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}`, 30) + `}`
	fieldsV1 := []byte(`{"f:metadata":{"f:labels":{` + strings.Repeat(`"f:label-key-xxxxxxxx":{},`, 40) + `"f:x":{}}},"f:spec":{` + strings.Repeat(`"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:env":{}}},`, 10) + `"f:y":{}}}`)
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		uids = append(uids, uid)
		var owner *metav1.OwnerReference
		name := fmt.Sprintf("pod-%03d", i)
		labels := map[string]string{
			"app.kubernetes.io/name": fmt.Sprintf("svc%03d", i%50), "app.kubernetes.io/instance": fmt.Sprintf("svc%03d-prod", i%50),
			"app.kubernetes.io/version": "1.2.3", "app.kubernetes.io/component": "backend", "app.kubernetes.io/part-of": "shop",
			"app.kubernetes.io/managed-by": "helm", "team": "payments", "tier": "backend", "env": "prod",
		}
		switch pct := i * 100 / n; {
		case pct < 60:
			d := fmt.Sprintf("svc%03d", i%50)
			hash := fmt.Sprintf("%010x", i%50)
			rs := d + "-" + hash
			name = fmt.Sprintf("%s-%05x", rs, i)
			labels["pod-template-hash"] = hash
			owner = controller("apps/v1", "ReplicaSet", rs, "rs-"+d)
			if i < 50 {
				objs = append(objs, replicaSet("shop", rs, "rs-"+d, controller("apps/v1", "Deployment", d, "deploy-"+d)))
			}
		case pct < 75:
			name = fmt.Sprintf("db%02d-%d", i%10, i)
			owner = controller("apps/v1", "StatefulSet", fmt.Sprintf("db%02d", i%10), fmt.Sprintf("sts-%d", i%10))
		case pct < 85:
			name = fmt.Sprintf("agent%02d-%05x", i, i)
			owner = controller("apps/v1", "DaemonSet", fmt.Sprintf("agent%02d", i), fmt.Sprintf("ds-%d", i))
		case pct < 95:
			j := fmt.Sprintf("report%02d-2901%04d", i%5, i)
			name = j + "-q8w2n"
			owner = controller("batch/v1", "Job", j, "job-"+j)
			objs = append(objs, job("shop", j, "job-"+j, controller("batch/v1", "CronJob", fmt.Sprintf("report%02d", i%5), fmt.Sprintf("cj-%d", i%5))))
		}
		p := podSpec{ns: "shop", name: name, uid: uid, owner: owner, labels: labels, annots: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": lastApplied,
			"prometheus.io/scrape":                             "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics",
			"checksum/config":                                strings.Repeat("ab", 32),
			"kubectl.kubernetes.io/restartedAt":              "2026-11-30T10:00:00Z",
			"cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
			"resource.opentelemetry.io/service.name":         fmt.Sprintf("svc%03d", i%50),
		}}
		for c := 0; c < 3; c++ {
			p.containers = append(p.containers, container{fmt.Sprintf("c%d", c), fmt.Sprintf("containerd://%056x%08x", i, c)})
		}
		objs = append(objs, fatten(p.pod(), fieldsV1))
	}
	return objs, uids
}

// fatten gives a pod what the API server sends besides what lookups read.
func fatten(p *corev1.Pod, fieldsV1 []byte) *corev1.Pod {
	now := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	p.CreationTimestamp, p.ResourceVersion, p.GenerateName = now, "123456", p.Name[:len(p.Name)-3]
	for m := 0; m < 3; m++ {
		p.ManagedFields = append(p.ManagedFields, metav1.ManagedFieldsEntry{
			Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: fieldsV1},
		})
	}
	spec := func(name string) corev1.Container {
		c := corev1.Container{Name: name, Image: "registry.example.com/team/" + name + ":1.2.3",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}, {Name: "metrics", ContainerPort: 9090, Protocol: "TCP"}},
			Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")}, Limits: corev1.ResourceList{"memory": resource.MustParse("256Mi")}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 5},
		}
		for e := 0; e < 12; e++ {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%02d", e), Value: "some-configuration-value-of-moderate-length"})
		}
		for v := 0; v < 4; v++ {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("vol%d", v), MountPath: fmt.Sprintf("/etc/app/vol%d", v), ReadOnly: true})
		}
		return c
	}
	for i := range p.Spec.Containers {
		p.Spec.Containers[i] = spec(p.Spec.Containers[i].Name)
		p.Status.ContainerStatuses[i].Image = p.Spec.Containers[i].Image
		p.Status.ContainerStatuses[i].ImageID = "registry.example.com/team/x@sha256:" + strings.Repeat("0f", 32)
		p.Status.ContainerStatuses[i].Ready = true
		p.Status.ContainerStatuses[i].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	}
	p.Spec.InitContainers = []corev1.Container{spec("init")}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ContainerID: "containerd://" + strings.Repeat("1", 64),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}
	for v := 0; v < 4; v++ {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("vol%d", v),
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
	}
	for _, c := range []corev1.PodConditionType{"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: "True", LastTransitionTime: now})
	}
	p.Status.Phase, p.Status.HostIP, p.Status.PodIP, p.Status.StartTime = corev1.PodRunning, "10.0.0.1", "10.244.1.17", &now
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.1.17"}}
	return p
}

// heapAfterGC is the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// syncFigures starts a watcher on the synthetic node and measures the heap
// it keeps and the time Start took; then, for comparison, the same with a
// plain pod informer that stores pods whole.
func syncFigures(t testing.TB) (watcherHeap, plainHeap uint64, syncTime time.Duration) {
	objs, uids := syntheticNode(syntheticPods)
	client := fake.NewClientset(objs...)

	before := heapAfterGC()
	begin := time.Now()
	w, err := NewWatcher(client, Config{NodeName: node, SyncTimeout: time.Minute})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	syncTime = time.Since(begin)
	for _, uid := range uids {
		info, ok := w.Lookup(uid, "")
		require.True(t, ok)
		require.NotEmpty(t, info.ServiceName)
	}
	watcherHeap = heapAfterGC() - before
	w.Shutdown()

	before = heapAfterGC()
	plain := coreinformers.NewFilteredPodInformer(client, "", 0, cache.Indexers{}, nil)
	stop := make(chan struct{})
	go plain.Run(stop)
	require.True(t, cache.WaitForCacheSync(nil, plain.HasSynced))
	plainHeap = heapAfterGC() - before
	close(stop)
	return watcherHeap, plainHeap, syncTime
}

// TestSynthetic250PodNode reports the figures and bounds the heap: the
// watcher keeps well under 2 MiB for the node (its pods stripped, indexes,
// the informer's own structures).
func TestSynthetic250PodNode(t *testing.T) {
	watcherHeap, plainHeap, syncTime := syncFigures(t)
	t.Logf("%d pods: watcher heap %d KiB (%d B/pod), sync %v; a plain pod informer keeps %d KiB (%d B/pod)",
		syntheticPods, watcherHeap>>10, watcherHeap/syntheticPods, syncTime.Round(time.Millisecond), plainHeap>>10, plainHeap/syntheticPods)
	require.Less(t, watcherHeap, uint64(2<<20))
	require.Less(t, watcherHeap*4, plainHeap, "the transform keeps a small part of each pod")
}

func BenchmarkSync250Pods(b *testing.B) {
	for i := 0; i < b.N; i++ {
		watcherHeap, plainHeap, syncTime := syncFigures(b)
		b.ReportMetric(float64(watcherHeap), "watcher-heap-B")
		b.ReportMetric(float64(plainHeap), "plain-informer-heap-B")
		b.ReportMetric(float64(syncTime.Microseconds())/1000, "sync-ms")
	}
}

func BenchmarkLookup(b *testing.B) {
	objs, uids := syntheticNode(syntheticPods)
	w, err := NewWatcher(fake.NewClientset(objs...), Config{NodeName: node})
	require.NoError(b, err)
	require.NoError(b, w.Start(context.Background()))
	defer w.Shutdown()
	cid := fmt.Sprintf("%056x%08x", 7, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := w.Lookup(uids[7], cid); !ok {
			b.Fatal("not found")
		}
	}
}

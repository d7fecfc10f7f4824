package e2e

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"
)

// The cost of the API enrichment on a busy node, measured AGAINST
// CLIENT-GO'S FAKE CLIENTSET, not an API server: the informer gets the
// typed objects a real list and watch would decode, but no bytes are
// decoded (a real agent also pays protobuf decoding, not counted here).
// The initial list comes from the fake's object tracker; the steady
// updates come through a watch the test feeds directly, with objects made
// before the clock starts, so their CPU figure is the informer's and the
// watcher's work alone.
//
// The node: 250 pods as real clusters have them (three containers and an
// init container with env, ports, probes and resources; ten labels; eight
// annotations among them kubectl's last-applied-configuration; managed
// fields; a full status), under 50 Deployments' ReplicaSets, 10
// StatefulSets, DaemonSets, and CronJobs' Jobs, a few bare. Steady
// updates: 1000 of them, kubelet's status updates (a condition's probe
// time) three times out of four, a container restart (a new container id)
// the fourth.
func TestFleetNodeOf250PodsWatcherCost(t *testing.T) {
	const (
		pods    = 250
		updates = 1000
	)
	objs, specs := syntheticNodePods(pods)
	client := fake.NewClientset(objs...)
	feed := watch.NewFakeWithChanSize(updates, false)
	client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) { return true, feed, nil })
	events, restarts := podUpdates(objs, specs, updates)

	// The initial sync: list, transform, index, read the owners.
	var changes atomic.Int64
	heap0 := liveHeap()
	cpu0, wall0 := cpuTime(), time.Now()
	w, err := k8s.NewWatcher(client, k8s.Config{NodeName: syntheticNode, SyncTimeout: time.Minute, ServiceNameFromLabels: true,
		OnChange: func(string) { changes.Add(1) }})
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(w.Shutdown)
	syncCPU, syncWall := cpuTime()-cpu0, time.Since(wall0)
	heap := liveHeap() - heap0

	// It works: every pod is found by its uid and container, with its owners.
	for _, s := range specs {
		info, ok := w.Lookup(s.uid, s.containerID)
		require.True(t, ok, "pod %s", s.name)
		require.Equal(t, s.name, info.Name)
		require.Equal(t, "app", info.ContainerName)
		require.Equal(t, s.deployment, info.Owners.DeploymentName, "pod %s", s.name)
		require.Equal(t, s.cronJob, info.Owners.CronJobName, "pod %s", s.name)
		require.Equal(t, s.service, info.ServiceName, "pod %s", s.name)
	}

	// Steady updates. The last is a restart: once it is seen, all are.
	before := changes.Load()
	cpu0, wall0 = cpuTime(), time.Now()
	for _, p := range events {
		feed.Modify(p)
	}
	require.Eventually(t, func() bool { return changes.Load()-before == restarts }, time.Minute, time.Millisecond,
		"the watcher saw %d of %d container restarts", changes.Load()-before, restarts)
	updCPU, updWall := cpuTime()-cpu0, time.Since(wall0)
	heapAfter := liveHeap() - heap0
	runtime.KeepAlive(events) // counted in heap0 too
	last := specs[(updates-1)%pods]
	info, ok := w.Lookup(last.uid, restartedID(last, (updates-1)/pods))
	require.True(t, ok)
	require.Equal(t, "app", info.ContainerName, "the restarted container is known by its new id")

	t.Logf("AGAINST client-go's FAKE CLIENTSET, %d pods, %d CPUs:", pods, runtime.NumCPU())
	t.Logf("  initial sync: %v CPU, %v wall; live heap kept %d KiB (%d B/pod)",
		syncCPU.Round(time.Millisecond), syncWall.Round(time.Millisecond), heap>>10, heap/pods)
	t.Logf("  %d updates (%d restarts): %v CPU, %v wall, %.1f µs CPU per update",
		updates, restarts, updCPU.Round(time.Millisecond), updWall.Round(time.Millisecond), float64(updCPU.Nanoseconds())/1e3/updates)
	t.Logf("  live heap after the updates: %d KiB; test process RSS %d KiB", heapAfter>>10, rssKiB(syscall.Getpid()))
	// A bound against regressions, with room: the watcher keeps a stripped
	// copy of each pod (about 1 KB), not the 20 KB the API sends.
	require.Less(t, heap, uint64(4<<20), "live heap of the watcher for %d pods", pods)
	require.Less(t, heapAfter, uint64(4<<20), "live heap of the watcher after %d updates", updates)
}

// podUpdates makes n updates of the node's pods in turn, as kubelet sends
// them: three in four move a condition's probe time, the fourth restarts
// the pod's app container (a new container id). It returns them and the
// count of restarts.
func podUpdates(objs []k8sruntime.Object, specs []*syntheticPod, n int) ([]*corev1.Pod, int64) {
	latest := map[string]*corev1.Pod{}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			latest[p.Name] = p
		}
	}
	var out []*corev1.Pod
	var restarts int64
	for u := 0; u < n; u++ {
		s := specs[u%len(specs)]
		p := latest[s.name].DeepCopy()
		p.ResourceVersion = fmt.Sprint(1000 + u)
		if u%4 == 3 {
			p.Status.ContainerStatuses[0].RestartCount++
			p.Status.ContainerStatuses[0].ContainerID = "containerd://" + restartedID(s, u/len(specs))
			restarts++
		} else {
			p.Status.Conditions[2].LastProbeTime = metav1.NewTime(time.Unix(int64(1_800_000_000+u), 0))
		}
		latest[s.name] = p
		out = append(out, p)
	}
	return out, restarts
}

const syntheticNode = "node-250"

// syntheticPod is a pod of the synthetic node and what the watcher should
// say of it.
type syntheticPod struct {
	name, uid, containerID string // containerID: its app container's
	deployment, cronJob    string
	service                string
	labels                 map[string]string
}

func syntheticNodePods(n int) ([]k8sruntime.Object, []*syntheticPod) {
	var objs []k8sruntime.Object
	var specs []*syntheticPod
	yes := true
	ref := func(apiVersion, kind, name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes}}
	}
	for i := 0; i < n; i++ {
		s := &syntheticPod{uid: fmt.Sprintf("%08x-1111-4222-8333-%012x", i, i), containerID: fmt.Sprintf("%056x%08x", i, 0)}
		app := fmt.Sprintf("svc%03d", i%50)
		s.labels = map[string]string{
			"app.kubernetes.io/name": app, "app.kubernetes.io/version": "1.2.3", "app.kubernetes.io/component": "backend",
			"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "helm", "team": "payments",
			"tier": "backend", "env": "prod", "region": "eu-west-1",
		}
		var owners []metav1.OwnerReference
		switch pct := i * 100 / n; {
		case pct < 60: // Deployments
			hash := fmt.Sprintf("%010x", i%50)
			rs := app + "-" + hash
			s.name, s.deployment, s.service = fmt.Sprintf("%s-%05x", rs, i), app, app
			s.labels["pod-template-hash"] = hash
			owners = ref("apps/v1", "ReplicaSet", rs, types.UID("rs-"+app))
			if i < 50 {
				objs = append(objs, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: rs, UID: types.UID("rs-" + app),
					OwnerReferences: ref("apps/v1", "Deployment", app, types.UID("deploy-"+app))}})
			}
		case pct < 75:
			sts := fmt.Sprintf("db%02d", i%10)
			s.name, s.service = fmt.Sprintf("%s-%d", sts, i), app
			owners = ref("apps/v1", "StatefulSet", sts, types.UID("sts-"+sts))
		case pct < 85:
			ds := fmt.Sprintf("agent%03d", i)
			s.name, s.service = ds+"-x7k2p", app
			owners = ref("apps/v1", "DaemonSet", ds, types.UID("ds-"+ds))
		case pct < 95:
			cj := fmt.Sprintf("report%02d", i%5)
			job := fmt.Sprintf("%s-2901%04d", cj, i)
			s.name, s.cronJob, s.service = job+"-q8w2n", cj, app
			owners = ref("batch/v1", "Job", job, types.UID("job-"+job))
			objs = append(objs, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: job, UID: types.UID("job-" + job),
				OwnerReferences: ref("batch/v1", "CronJob", cj, types.UID("cj-"+cj))}})
		default: // bare pods
			s.name, s.service = fmt.Sprintf("debug-%d", i), app
		}
		objs = append(objs, fatPod(s, owners))
		specs = append(specs, s)
	}
	return objs, specs
}

// fatPod is a pod with all the API sends besides what lookups read.
func fatPod(s *syntheticPod, owners []metav1.OwnerReference) *corev1.Pod {
	now := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	lastApplied := `{"apiVersion":"v1","kind":"Pod","spec":` + strings.Repeat(`{"containers":[{"name":"app","image":"registry.example.com/app:1.2.3"}]}`, 25) + `}`
	fields := []byte(`{"f:metadata":{"f:labels":{` + strings.Repeat(`"f:some-label-key":{},`, 30) + `"f:x":{}}},"f:spec":{` +
		strings.Repeat(`"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:env":{}}},`, 8) + `"f:y":{}}}`)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: s.name, UID: types.UID(s.uid), Labels: s.labels, OwnerReferences: owners,
		CreationTimestamp: now, ResourceVersion: "1", GenerateName: s.name[:len(s.name)-3],
		Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": lastApplied,
			"prometheus.io/scrape":                             "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics",
			"checksum/config":                                strings.Repeat("ab", 32),
			"kubectl.kubernetes.io/restartedAt":              "2026-11-30T10:00:00Z",
			"cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
			"resource.opentelemetry.io/service.name":         s.service,
		},
	}, Spec: corev1.PodSpec{NodeName: syntheticNode}}
	for m := 0; m < 3; m++ {
		p.ManagedFields = append(p.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager",
			Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: fields}})
	}
	container := func(name string) corev1.Container {
		c := corev1.Container{Name: name, Image: "registry.example.com/team/" + name + ":1.2.3",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}, {Name: "metrics", ContainerPort: 9090, Protocol: "TCP"}},
			Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}},
		}
		for e := 0; e < 12; e++ {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%02d", e), Value: "some-configuration-value-of-moderate-length"})
		}
		for v := 0; v < 4; v++ {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("vol%d", v), MountPath: fmt.Sprintf("/etc/app/vol%d", v), ReadOnly: true})
		}
		return c
	}
	for c, name := range []string{"app", "sidecar", "metrics"} {
		p.Spec.Containers = append(p.Spec.Containers, container(name))
		id := s.containerID
		if c > 0 {
			id = s.containerID[:56] + fmt.Sprintf("%08x", c)
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: name, ContainerID: "containerd://" + id,
			Image: "registry.example.com/team/" + name + ":1.2.3", ImageID: "registry.example.com/team/x@sha256:" + strings.Repeat("0f", 32),
			Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	p.Spec.InitContainers = []corev1.Container{container("init")}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ContainerID: "containerd://" + strings.Repeat("1", 64),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}}
	for v := 0; v < 4; v++ {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("vol%d", v),
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
	}
	for _, c := range []corev1.PodConditionType{"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: "True", LastTransitionTime: now})
	}
	p.Status.Phase, p.Status.HostIP, p.Status.PodIP, p.Status.StartTime = corev1.PodRunning, "10.0.0.1", "10.244.1.17", &now
	return p
}

// restartedID is the id of pod s's app container after a restart in round
// r of the updates.
func restartedID(s *syntheticPod, r int) string {
	return s.containerID[:56] + fmt.Sprintf("%08x", 0x10000+r)
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

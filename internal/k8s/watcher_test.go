package k8s

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const node = "node-1"

type container struct{ name, id string } // id as the status has it: "<runtime>://<hex>"

type podSpec struct {
	ns, name, uid, node string
	owner               *metav1.OwnerReference
	labels, annots      map[string]string
	containers          []container
}

func controller(apiVersion, kind, name, uid string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes}
}

func (s podSpec) pod() *corev1.Pod {
	if s.node == "" {
		s.node = node
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name, UID: types.UID(s.uid), Labels: s.labels, Annotations: s.annots},
		Spec:       corev1.PodSpec{NodeName: s.node},
	}
	if s.owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*s.owner}
	}
	for _, c := range s.containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.name, Image: "registry.example/" + c.name + ":1.0"})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.name, ContainerID: c.id})
	}
	return p
}

func replicaSet(ns, name, uid string, owner *metav1.OwnerReference) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
	if owner != nil {
		rs.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return rs
}

func job(ns, name, uid string, owner *metav1.OwnerReference) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
	if owner != nil {
		j.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return j
}

// The node's workloads.
var (
	checkoutPod = podSpec{ns: "shop", name: "checkout-7d9f8b6c5d-x2x4z", uid: uid1,
		owner:      controller("apps/v1", "ReplicaSet", "checkout-7d9f8b6c5d", "rs-uid"),
		labels:     map[string]string{"pod-template-hash": "7d9f8b6c5d", "app.kubernetes.io/instance": "checkout-prod", "app.kubernetes.io/name": "checkout", "app.kubernetes.io/version": "2.1.0", "team": "payments"},
		containers: []container{{"server", "containerd://" + cid1}, {"istio-proxy", "containerd://" + cid2}}}
	checkoutRS = replicaSet("shop", "checkout-7d9f8b6c5d", "rs-uid", controller("apps/v1", "Deployment", "checkout", "deploy-uid"))

	dbPod = podSpec{ns: "shop", name: "db-0", uid: uid2,
		owner:      controller("apps/v1", "StatefulSet", "db", "sts-uid"),
		labels:     map[string]string{"app.kubernetes.io/name": "postgresql"},
		containers: []container{{"postgres", "cri-o://" + cid3}}}

	exporterPod = podSpec{ns: "monitoring", name: "node-exporter-8xk2p", uid: "7c7e8a52-4f3a-4b44-9d1e-0c0a6b8e2a11",
		owner:      controller("apps/v1", "DaemonSet", "node-exporter", "ds-uid"),
		containers: []container{{"node-exporter", "containerd://6ab05ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f"}}}

	reportPod = podSpec{ns: "batch", name: "report-29012345-q8w2n", uid: "d6846b2a-8c30-4893-a8e3-749b9728f05e",
		owner:      controller("batch/v1", "Job", "report-29012345", "job-uid"),
		containers: []container{{"report", "containerd://9c04c49e68c73bf5a5d9f6f564060449f0830ee076b28d993fa4c7813e129541"}}}
	reportJob = job("batch", "report-29012345", "job-uid", controller("batch/v1", "CronJob", "report", "cronjob-uid"))

	debugPod = podSpec{ns: "default", name: "debug", uid: "4b30eccc-ec37-40b9-a0f8-d1cf3a68b63b",
		containers: []container{{"shell", "containerd://d991dcba5cd1c538af05fecdf05082683cf904e25e7e79389169a289a07c1e48"}}}

	frontendPod = podSpec{ns: "web", name: "frontend", uid: "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
		labels: map[string]string{"app.kubernetes.io/instance": "ignored-by-annotation"},
		annots: map[string]string{
			"resource.opentelemetry.io/service.name":                "storefront",
			"resource.opentelemetry.io/service.namespace":           "retail",
			"resource.opentelemetry.io/service.version":             "1.4.2",
			"resource.opentelemetry.io/service.instance.id":         "never-copied",
			"resource.opentelemetry.io/deployment.environment.name": "prod",
			"kubectl.kubernetes.io/last-applied-configuration":      "{}",
		},
		containers: []container{{"nginx", "docker://aaaa5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f"}}}

	// A static pod's mirror: its containers' cgroups carry the static uid.
	mirrorPod = podSpec{ns: "kube-system", name: "kube-apiserver-node-1", uid: "11111111-2222-4333-8444-555555555555",
		owner:      controller("v1", "Node", node, "node-uid"),
		annots:     map[string]string{"kubernetes.io/config.mirror": staticUID},
		containers: []container{{"kube-apiserver", "containerd://bbbb5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f"}}}

	// A pod of another node, which the fake clientset lists anyway (it
	// ignores field selectors).
	elsewherePod = podSpec{ns: "shop", name: "checkout-7d9f8b6c5d-zzzzz", uid: "99999999-2222-4333-8444-555555555555", node: "node-2",
		owner:      controller("apps/v1", "ReplicaSet", "checkout-7d9f8b6c5d", "rs-uid"),
		containers: []container{{"server", "containerd://cccc5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f"}}}
)

func objects() []runtime.Object {
	return []runtime.Object{
		checkoutPod.pod(), checkoutRS, dbPod.pod(), exporterPod.pod(), reportPod.pod(), reportJob,
		debugPod.pod(), frontendPod.pod(), mirrorPod.pod(), elsewherePod.pod(),
	}
}

func startWatcher(t *testing.T, client *fake.Clientset, cfg Config) *Watcher {
	t.Helper()
	cfg.NodeName = node
	w, err := NewWatcher(client, cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(w.Shutdown)
	return w
}

// attrs is what the lead puts on a resource: the node's identity, then the
// API's, then (no OTEL_SERVICE_NAME) the derived service.
func attrs(info PodInfo) map[string]any {
	m := pcommon.NewMap()
	info.Fill(m)
	info.FillService(m)
	return m.AsRaw()
}

func TestWatcherEnrichment(t *testing.T) {
	w := startWatcher(t, fake.NewClientset(objects()...), Config{})

	tests := []struct {
		name        string
		podUID, cid string
		want        map[string]any
		wantFound   bool
	}{
		{"deployment via replicaset", uid1, cid1, map[string]any{
			"k8s.pod.name": "checkout-7d9f8b6c5d-x2x4z", "k8s.namespace.name": "shop", "k8s.node.name": node,
			"k8s.container.name": "server", "container.runtime.name": "containerd",
			"k8s.replicaset.name": "checkout-7d9f8b6c5d", "k8s.replicaset.uid": "rs-uid",
			"k8s.deployment.name": "checkout", "k8s.deployment.uid": "deploy-uid",
			"service.name": "checkout", "service.namespace": "shop",
		}, true},
		{"other container of the pod", uid1, cid2, map[string]any{
			"k8s.pod.name": "checkout-7d9f8b6c5d-x2x4z", "k8s.namespace.name": "shop", "k8s.node.name": node,
			"k8s.container.name": "istio-proxy", "container.runtime.name": "containerd",
			"k8s.replicaset.name": "checkout-7d9f8b6c5d", "k8s.replicaset.uid": "rs-uid",
			"k8s.deployment.name": "checkout", "k8s.deployment.uid": "deploy-uid",
			"service.name": "checkout", "service.namespace": "shop",
		}, true},
		{"statefulset, by container id alone", "", cid3, map[string]any{
			"k8s.pod.name": "db-0", "k8s.namespace.name": "shop", "k8s.node.name": node,
			"k8s.container.name": "postgres", "container.runtime.name": "cri-o",
			"k8s.statefulset.name": "db", "k8s.statefulset.uid": "sts-uid",
			"service.name": "db", "service.namespace": "shop",
		}, true},
		{"daemonset", exporterPod.uid, "6ab05ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f", map[string]any{
			"k8s.pod.name": "node-exporter-8xk2p", "k8s.namespace.name": "monitoring", "k8s.node.name": node,
			"k8s.container.name": "node-exporter", "container.runtime.name": "containerd",
			"k8s.daemonset.name": "node-exporter", "k8s.daemonset.uid": "ds-uid",
			"service.name": "node-exporter", "service.namespace": "monitoring",
		}, true},
		{"cronjob via job", reportPod.uid, "", map[string]any{
			"k8s.pod.name": "report-29012345-q8w2n", "k8s.namespace.name": "batch", "k8s.node.name": node,
			"k8s.job.name": "report-29012345", "k8s.job.uid": "job-uid",
			"k8s.cronjob.name": "report", "k8s.cronjob.uid": "cronjob-uid",
			"service.name": "report", "service.namespace": "batch",
		}, true},
		{"bare pod", debugPod.uid, "d991dcba5cd1c538af05fecdf05082683cf904e25e7e79389169a289a07c1e48", map[string]any{
			"k8s.pod.name": "debug", "k8s.namespace.name": "default", "k8s.node.name": node,
			"k8s.container.name": "shell", "container.runtime.name": "containerd",
			"service.name": "debug", "service.namespace": "default",
		}, true},
		{"annotations", frontendPod.uid, "aaaa5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f", map[string]any{
			"k8s.pod.name": "frontend", "k8s.namespace.name": "web", "k8s.node.name": node,
			"k8s.container.name": "nginx", "container.runtime.name": "docker",
			"deployment.environment.name": "prod",
			"service.name":                "storefront", "service.namespace": "retail", "service.version": "1.4.2",
		}, true},
		{"static pod by its cgroup uid", staticUID, "bbbb5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f", map[string]any{
			"k8s.pod.name": "kube-apiserver-node-1", "k8s.namespace.name": "kube-system", "k8s.node.name": node,
			"k8s.container.name": "kube-apiserver", "container.runtime.name": "containerd",
			"service.name": "kube-apiserver-node-1", "service.namespace": "kube-system",
		}, true},
		{"container not (yet) in the status", uid2, cid1, map[string]any{
			"k8s.pod.name": "db-0", "k8s.namespace.name": "shop", "k8s.node.name": node,
			"k8s.statefulset.name": "db", "k8s.statefulset.uid": "sts-uid",
			"service.name": "db", "service.namespace": "shop",
		}, true},
		{"pod of another node", elsewherePod.uid, "", nil, false},
		{"container of another node's pod", "", "cccc5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f", nil, false},
		{"unknown pod", "00000000-0000-4000-8000-000000000000", cid1, nil, false},
		{"nothing to look up", "", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, ok := w.Lookup(tt.podUID, tt.cid)
			require.Equal(t, tt.wantFound, ok)
			if ok {
				assert.Equal(t, tt.want, attrs(info))
			}
		})
	}
}

func TestWatcherServiceNameFromLabels(t *testing.T) {
	w := startWatcher(t, fake.NewClientset(objects()...), Config{ServiceNameFromLabels: true})
	for _, tt := range []struct {
		uid, name, version string
	}{
		{uid1, "checkout-prod", "2.1.0"},         // app.kubernetes.io/instance first
		{uid2, "postgresql", ""},                 // then app.kubernetes.io/name
		{frontendPod.uid, "storefront", "1.4.2"}, // the annotation before labels
		{exporterPod.uid, "node-exporter", ""},   // no label: the owner
	} {
		info, ok := w.Lookup(tt.uid, "")
		require.True(t, ok)
		assert.Equal(t, tt.name, info.ServiceName, tt.uid)
		assert.Equal(t, tt.version, info.ServiceVersion, tt.uid)
	}
}

func TestWatcherPodDeletionAndNameReuse(t *testing.T) {
	client := fake.NewClientset(objects()...)
	w := startWatcher(t, client, Config{})
	ctx := context.Background()
	pods := client.CoreV1().Pods("shop")

	_, ok := w.Lookup(uid2, "")
	require.True(t, ok)
	require.NoError(t, pods.Delete(ctx, "db-0", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { _, ok := w.Lookup(uid2, ""); return !ok }, 5*time.Second, 5*time.Millisecond)
	_, ok = w.Lookup("", cid3)
	assert.False(t, ok, "a deleted pod's containers are forgotten too")

	// The StatefulSet recreates db-0: same name, new uid, new container.
	const newUID = "5e5e5e5e-1111-4222-8333-444444444444"
	const newCID = "eeee5ab0d55a0b813f4a8fce4fd2433827479cfe1f694e3bdba1d7179aa92e3f"
	reborn := dbPod
	reborn.uid, reborn.containers = newUID, []container{{"postgres", "cri-o://" + newCID}}
	_, err := pods.Create(ctx, reborn.pod(), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := w.Lookup(newUID, newCID); return ok }, 5*time.Second, 5*time.Millisecond)
	info, _ := w.Lookup(newUID, newCID)
	assert.Equal(t, "db-0", info.Name)
	assert.Equal(t, "postgres", info.ContainerName)
	_, ok = w.Lookup(uid2, "")
	assert.False(t, ok, "the old uid stays forgotten")
	_, ok = w.Lookup("", cid3)
	assert.False(t, ok, "the old container stays forgotten")

	// The last pod of a ReplicaSet goes: the ReplicaSet is forgotten.
	require.Equal(t, 2, ownersKnown(w), "the checkout ReplicaSet and the report Job")
	require.NoError(t, pods.Delete(ctx, checkoutPod.name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return ownersKnown(w) == 1 }, 5*time.Second, 5*time.Millisecond)
}

func ownersKnown(w *Watcher) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.owners)
}

func TestWatcherOnChangeWhenContainerStarts(t *testing.T) {
	client := fake.NewClientset(checkoutRS)
	var (
		mu      sync.Mutex
		changed []string
	)
	w := startWatcher(t, client, Config{OnChange: func(uid string) {
		mu.Lock()
		defer mu.Unlock()
		changed = append(changed, uid)
	}})
	seen := func(uid string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range changed {
			if u == uid {
				return true
			}
		}
		return false
	}
	ctx := context.Background()

	// Scheduled, its container not started yet.
	starting := checkoutPod
	starting.containers = []container{{"server", ""}}
	p, err := client.CoreV1().Pods("shop").Create(ctx, starting.pod(), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return seen(uid1) }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { info, _ := w.Lookup(uid1, cid1); return info.Owners.DeploymentUID != "" }, 5*time.Second, 5*time.Millisecond)
	info, _ := w.Lookup(uid1, cid1)
	assert.Equal(t, "", info.ContainerName)

	mu.Lock()
	changed = nil
	mu.Unlock()
	p.Status.ContainerStatuses[0].ContainerID = "containerd://" + cid1
	_, err = client.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return seen(uid1) }, 5*time.Second, 5*time.Millisecond)
	info, _ = w.Lookup(uid1, cid1)
	assert.Equal(t, "server", info.ContainerName)
}

func TestWatcherOwnerReadFailsFallsBackToHashLabel(t *testing.T) {
	second := podSpec{ns: "shop", name: "cart-5c6d7e8f9a-p2p2p", uid: "15151515-3434-4565-8787-909090909090",
		labels: map[string]string{"pod-template-hash": "5c6d7e8f9a"},
		owner:  controller("apps/v1", "ReplicaSet", "cart-5c6d7e8f9a", "cart-rs-uid")}
	client := fake.NewClientset(append(objects(), second.pod())...)
	client.PrependReactor("get", "replicasets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "replicasets"}, "checkout-7d9f8b6c5d", errors.New("RBAC: no get on replicasets"))
	})
	core, logs := observer.New(zap.WarnLevel)
	w := startWatcher(t, client, Config{Logger: zap.New(core)})

	info, ok := w.Lookup(uid1, cid1)
	require.True(t, ok)
	assert.Equal(t, Owners{ReplicaSetName: "checkout-7d9f8b6c5d", ReplicaSetUID: "rs-uid", DeploymentName: "checkout"}, info.Owners,
		"the pod-template-hash label proves the Deployment's name; its uid is unknown")
	assert.Equal(t, "checkout", info.ServiceName)

	info, _ = w.Lookup(second.uid, "")
	assert.Equal(t, "cart", info.Owners.DeploymentName)

	// The error is logged once, for every ReplicaSet and however often the
	// reads are retried.
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, logs.FilterMessageSnippet("kubernetes API error").Len())
	assert.Contains(t, logs.All()[0].ContextMap()["error"], "RBAC: no get on replicasets")
}

func TestWatcherDeploymentNotClaimedWithoutProof(t *testing.T) {
	hashless := podSpec{ns: "shop", name: "legacy-abcde", uid: "12121212-3434-4565-8787-909090909090",
		owner: controller("apps/v1", "ReplicaSet", "legacy", "legacy-rs-uid")}
	gone := podSpec{ns: "shop", name: "orphan-5f6d7c8b9a-abcde", uid: "13131313-3434-4565-8787-909090909090",
		labels: map[string]string{"pod-template-hash": "5f6d7c8b9a"},
		owner:  controller("apps/v1", "ReplicaSet", "orphan-5f6d7c8b9a", "orphan-rs-uid")}
	replaced := podSpec{ns: "shop", name: "web-6b7c8d9e0f-abcde", uid: "14141414-3434-4565-8787-909090909090",
		labels: map[string]string{"pod-template-hash": "6b7c8d9e0f"},
		owner:  controller("apps/v1", "ReplicaSet", "web-6b7c8d9e0f", "old-rs-uid")}
	client := fake.NewClientset(
		hashless.pod(), replicaSet("shop", "legacy", "legacy-rs-uid", nil), // a ReplicaSet of its own
		gone.pod(), // its ReplicaSet was deleted
		replaced.pod(), replicaSet("shop", "web-6b7c8d9e0f", "new-rs-uid", controller("apps/v1", "Deployment", "web", "web-uid")),
	)
	w := startWatcher(t, client, Config{})
	for _, p := range []podSpec{hashless, gone, replaced} {
		info, ok := w.Lookup(p.uid, "")
		require.True(t, ok)
		assert.Equal(t, Owners{ReplicaSetName: p.owner.Name, ReplicaSetUID: string(p.owner.UID)}, info.Owners, p.name)
		assert.Equal(t, p.owner.Name, info.ServiceName, "the ReplicaSet names the service")
	}
}

func TestWatcherAPIUnreachable(t *testing.T) {
	client := fake.NewClientset(objects()...)
	var down atomic.Bool
	down.Store(true)
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
		}
		return false, nil, nil
	})
	core, logs := observer.New(zap.WarnLevel)
	w, err := NewWatcher(client, Config{NodeName: node, SyncTimeout: 300 * time.Millisecond, Logger: zap.New(core)})
	require.NoError(t, err)
	t.Cleanup(w.Shutdown)

	begin := time.Now()
	err = w.Start(context.Background())
	require.Error(t, err)
	assert.Less(t, time.Since(begin), 2*time.Second, "Start does not block for long")
	assert.Contains(t, err.Error(), "the pods of node node-1 not read")
	assert.Contains(t, err.Error(), "connection refused")
	_, ok := w.Lookup(uid1, cid1)
	assert.False(t, ok)
	assert.Equal(t, 1, logs.FilterMessageSnippet("kubernetes API error").Len())

	down.Store(false) // back: the watcher catches up by itself
	require.Eventually(t, func() bool { _, ok := w.Lookup(uid1, cid1); return ok }, 10*time.Second, 10*time.Millisecond)
}

func TestWatcherStartHonoursContext(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("unreachable")
	})
	w, err := NewWatcher(client, Config{NodeName: node, SyncTimeout: time.Minute})
	require.NoError(t, err)
	defer w.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorContains(t, w.Start(ctx), "context deadline exceeded")
}

func TestWatcherNoPodsOnNodeWarns(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	startWatcher(t, fake.NewClientset(elsewherePod.pod()), Config{Logger: zap.New(core)})
	// The fake lists the other node's pod (it ignores field selectors):
	// only pods of this node count.
	assert.Equal(t, 1, logs.FilterMessageSnippet("no pod is on this node").Len())
}

func TestNewWatcherNeedsNodeName(t *testing.T) {
	_, err := NewWatcher(fake.NewClientset(), Config{})
	require.ErrorContains(t, err, NodeNameEnv)
}

func TestWatcherShutdownWithoutStart(t *testing.T) {
	w, err := NewWatcher(fake.NewClientset(), Config{NodeName: node})
	require.NoError(t, err)
	w.Shutdown()
	w.Shutdown() // twice is fine
}

func TestDeploymentFromHash(t *testing.T) {
	for _, tt := range []struct{ rs, hash, want string }{
		{"checkout-7d9f8b6c5d", "7d9f8b6c5d", "checkout"},
		{"my-app-v2-7d9f8b6c5d", "7d9f8b6c5d", "my-app-v2"},
		{"checkout-7d9f8b6c5d", "5c6d7e8f9a", ""}, // the hash is another's
		{"checkout7d9f8b6c5d", "7d9f8b6c5d", ""},  // no dash before it
		{"-7d9f8b6c5d", "7d9f8b6c5d", ""},
		{"checkout-7d9f8b6c5d", "", ""},
	} {
		assert.Equal(t, tt.want, deploymentFromHash(tt.rs, tt.hash), "%s %s", tt.rs, tt.hash)
	}
}

func TestPodFactsKeepOnlyWhatLookupsRead(t *testing.T) {
	objs, _ := syntheticNode(1)
	var full *corev1.Pod
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			full = p
		}
	}
	f := newPodFacts(full)
	assert.Equal(t, full.Name, f.Name)
	assert.Equal(t, full.UID, f.UID)
	assert.Empty(t, f.ManagedFields)
	assert.Nil(t, f.Labels)
	assert.Nil(t, f.Annotations)
	assert.Equal(t, ownerFacts{group: "apps", kind: "ReplicaSet", name: "svc000-0000000000", uid: "rs-svc000"}, f.owner)
	assert.Equal(t, map[string]string{"service.name": "svc000"}, f.resourceAnnotations)
	assert.Equal(t, "0000000000", f.podTemplateHash)
	assert.Len(t, f.containers, 4, "three containers and the init container")
	assert.Equal(t, containerFacts{name: "c1", runtime: "containerd", id: fmt.Sprintf("%056x%08x", 0, 1)}, f.containers[1])

	// The transform may see its own output again.
	again, err := transformPod(f)
	require.NoError(t, err)
	assert.Same(t, f, again)

	c := f.DeepCopyObject().(*podFacts)
	c.containers[0].name = "changed"
	c.resourceAnnotations["service.name"] = "changed"
	assert.Equal(t, "c0", f.containers[0].name, "a deep copy")
	assert.Equal(t, "svc000", f.resourceAnnotations["service.name"])
}

func TestResourceAnnotationsBounded(t *testing.T) {
	in := map[string]string{"resource.opentelemetry.io/huge": strings.Repeat("x", 2000), "resource.opentelemetry.io/": "no key", "other": "x"}
	for i := 0; i < 100; i++ {
		in[fmt.Sprintf("resource.opentelemetry.io/k%03d", i)] = "v"
	}
	out := resourceAnnotations(in)
	assert.Len(t, out, maxResourceAnnotations)
	assert.Contains(t, out, "k000", "the first keys, always the same ones")
	assert.NotContains(t, out, "huge")
}

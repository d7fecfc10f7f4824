package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Config configures a Watcher.
type Config struct {
	// NodeName is the node whose pods are watched (spec.nodeName); required.
	NodeName string
	// SyncTimeout bounds how long Start waits for the first sync (default 5s).
	SyncTimeout time.Duration
	// ServiceNameFromLabels lets the app.kubernetes.io/instance, /name and
	// /version labels name the service: the semantic conventions ask that
	// tools read well-known labels only when the user opts in.
	ServiceNameFromLabels bool
	// OnChange, if set, is called with a pod's uid (the one its cgroups
	// carry) when what Lookup returns for it may have changed: the pod
	// appeared, a container got its id, an owner was read. It runs on the
	// watcher's goroutines and must not block.
	OnChange func(podUID string)
	// Logger receives the API's errors, each distinct one once.
	Logger *zap.Logger
}

const defaultSyncTimeout = 5 * time.Second

// Watcher enriches the processes of this node's pods from the Kubernetes
// API: container names, node, owners and the service identity.
//
// It watches only the pods of its node (field selector spec.nodeName),
// through an informer whose transform keeps about 1 KB of each pod (see
// podFacts); pods are indexed by uid, by the static-pod uid of a mirror
// pod, and by container id. A deleted pod leaves the indexes at once; a new
// pod that reuses a deleted one's name has a new uid and is a new entry.
//
// The owners of a pod's ReplicaSet and Job (its Deployment, its CronJob)
// are read with one GET per ReplicaSet or Job some pod of the node runs
// under, cached by uid and forgotten when no pod of the node refers to it:
// memory follows the node's pods, never the cluster's size. A read that
// fails is retried with backoff (5 ms doubling to 5 min).
//
// When the API cannot be reached, Start says so after SyncTimeout and
// keeps trying in the background; until the first sync, Lookup finds
// nothing.
type Watcher struct {
	cfg    Config
	client kubernetes.Interface
	log    *zap.Logger
	pods   cache.SharedIndexInformer
	queue  workqueue.TypedRateLimitingInterface[ownerRef]

	mu      sync.Mutex
	owners  map[types.UID]*ownerState
	untried int                 // owners never read yet
	errs    map[string]apiError // what failed to be read -> its last error

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ownerRef is a ReplicaSet or a Job whose own owner is to be read.
type ownerRef struct {
	namespace, kind, name string
	uid                   types.UID
}

// ownerState is what is known of a ReplicaSet's or Job's owner.
type ownerState struct {
	tried bool
	known bool // read (or found gone): parent* is the truth
	// The controller owning the ReplicaSet (a Deployment) or the Job (a
	// CronJob); empty when it has none.
	parentName string
	parentUID  types.UID
}

// apiError is the last error in reading something: its kind (the API's
// reason, else its text) decides whether it is logged again.
type apiError struct{ kind, text string }

// Index names of the pod informer.
const (
	indexUID       = "uid"
	indexContainer = "container"
	indexOwner     = "owner"
)

// NewWatcher prepares a watcher of cfg.NodeName's pods; Start starts it.
func NewWatcher(client kubernetes.Interface, cfg Config) (*Watcher, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("kubernetes: the node name is unknown (set " + NodeNameEnv + " from spec.nodeName)")
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = defaultSyncTimeout
	}
	w := &Watcher{cfg: cfg, client: client, log: cfg.Logger, owners: map[types.UID]*ownerState{}}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	selector := fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
	w.pods = coreinformers.NewFilteredPodInformer(client, metav1.NamespaceAll, 0, cache.Indexers{
		indexUID:       w.indexUID,
		indexContainer: w.indexContainer,
		indexOwner:     w.indexOwner,
	}, func(o *metav1.ListOptions) { o.FieldSelector = selector })
	if err := w.pods.SetTransform(transformPod); err != nil {
		return nil, fmt.Errorf("kubernetes: pod transform: %w", err)
	}
	if err := w.pods.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) { w.reportError("pods", err) }); err != nil {
		return nil, fmt.Errorf("kubernetes: pod watch error handler: %w", err)
	}
	_, err := w.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.podAdded,
		UpdateFunc: w.podUpdated,
		DeleteFunc: w.podDeleted,
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: pod event handler: %w", err)
	}
	// Made last: the queue runs a goroutine, which Shutdown stops.
	w.queue = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[ownerRef](5*time.Millisecond, 5*time.Minute))
	return w, nil
}

// InClusterClient is a client of the API server with the pod's service
// account. It speaks protobuf and allows bursts of owner reads.
func InClusterClient() (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: in-cluster configuration: %w", err)
	}
	cfg.UserAgent = "otelcol-ebpf"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.QPS, cfg.Burst = 20, 50
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	return client, nil
}

// Start runs the watcher (once) and waits, at most SyncTimeout or until ctx ends,
// for the node's pods to be listed and their owners read once. On time-out
// it returns an error saying why, and goes on trying in the background.
func (w *Watcher) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.pods.RunWithContext(runCtx) }()
	go func() { defer w.wg.Done(); w.resolveOwners(runCtx) }()

	deadline := time.NewTimer(w.cfg.SyncTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !w.synced() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return w.notSynced(w.cfg.SyncTimeout.String())
		case <-ctx.Done():
			return w.notSynced(ctx.Err().Error())
		}
	}
	if len(w.pods.GetIndexer().ListIndexFuncValues(indexUID)) == 0 { // only this node's pods are indexed
		w.log.Warn("kubernetes: no pod is on this node: is the node name right? (set "+NodeNameEnv+" from spec.nodeName)",
			zap.String("node", w.cfg.NodeName))
	}
	return nil
}

func (w *Watcher) synced() bool {
	if !w.pods.HasSynced() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.untried == 0
}

func (w *Watcher) notSynced(why string) error {
	w.mu.Lock()
	last := w.errs["pods"].text
	if last == "" {
		for _, e := range w.errs {
			last = e.text
		}
	}
	w.mu.Unlock()
	what := "the pods of node " + w.cfg.NodeName
	if w.pods.HasSynced() {
		what = "the owners of the pods of node " + w.cfg.NodeName
	}
	if last == "" {
		last = "no answer yet"
	}
	return fmt.Errorf("kubernetes: %s not read (%s; last error: %s); lookups return less until they are, still trying", what, why, last)
}

// Shutdown stops the watcher, started or not, and waits for its
// goroutines.
func (w *Watcher) Shutdown() {
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
	w.queue.ShutDown()
	w.wg.Wait()
}

// reportError logs an error of the API in reading what (pods, or owners of
// a kind) once, until another kind of error comes: a missing permission is
// one line, not one per ReplicaSet and retry. The ends of watches that the
// informer resumes by itself are no errors.
func (w *Watcher) reportError(what string, err error) {
	if errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || errors.Is(err, context.Canceled) {
		return
	}
	kind := err.Error()
	if reason := apierrors.ReasonForError(err); reason != metav1.StatusReasonUnknown {
		kind = string(reason)
	}
	w.mu.Lock()
	if w.errs == nil {
		w.errs = map[string]apiError{}
	}
	repeated := w.errs[what].kind == kind
	w.errs[what] = apiError{kind: kind, text: err.Error()}
	w.mu.Unlock()
	if !repeated {
		w.log.Warn("kubernetes API error: enrichment is incomplete until it is reachable again",
			zap.String("reading", what), zap.Error(err))
	}
}

// Lookup is what the API says of the pod with uid podUID (as cgroups show
// it) or, with no uid, of the pod running container containerID, and of
// that container. It reports false when no pod of the node is known by
// them.
func (w *Watcher) Lookup(podUID, containerID string) (PodInfo, bool) {
	idx := w.pods.GetIndexer()
	var objs []any
	if podUID != "" {
		objs, _ = idx.ByIndex(indexUID, podUID)
	} else if containerID != "" {
		objs, _ = idx.ByIndex(indexContainer, containerID)
	}
	if len(objs) != 1 {
		return PodInfo{}, false // none, or (never seen) ambiguous
	}
	pod, ok := objs[0].(*podFacts)
	if !ok {
		return PodInfo{}, false
	}
	info := PodInfo{UID: string(pod.UID), Name: pod.Name, Namespace: pod.Namespace, NodeName: pod.nodeName}
	if c, ok := pod.container(containerID); ok {
		info.ContainerName, info.ContainerRuntime = c.name, c.runtime
	}
	info.Owners = w.ownersOf(pod)
	serviceFields(pod, &info, w.cfg.ServiceNameFromLabels)
	info.Attributes = annotationAttributes(pod)
	return info, true
}

// ownersOf names the workloads of pod from its controller reference and,
// for a ReplicaSet or a Job, what was read of that one's owner.
func (w *Watcher) ownersOf(pod *podFacts) Owners {
	var o Owners
	ref := pod.owner
	group, kind, name, uid := ref.group, ref.kind, ref.name, string(ref.uid)
	switch {
	case group == "apps" && kind == "ReplicaSet":
		o.ReplicaSetName, o.ReplicaSetUID = name, uid
		if st, known := w.ownerKnown(ref.uid); known {
			o.DeploymentName, o.DeploymentUID = st.parentName, string(st.parentUID)
		} else {
			o.DeploymentName = deploymentFromHash(name, pod.podTemplateHash)
		}
	case group == "apps" && kind == "StatefulSet":
		o.StatefulSetName, o.StatefulSetUID = name, uid
	case group == "apps" && kind == "DaemonSet":
		o.DaemonSetName, o.DaemonSetUID = name, uid
	case group == "batch" && kind == "Job":
		o.JobName, o.JobUID = name, uid
		if st, known := w.ownerKnown(ref.uid); known {
			o.CronJobName, o.CronJobUID = st.parentName, string(st.parentUID)
		}
	}
	return o
}

// deploymentFromHash: a Deployment names its ReplicaSets
// "<deployment>-<pod-template-hash>" and labels their pods with the hash,
// so a ReplicaSet name that ends in "-<the pod's hash>" proves the rest is
// the Deployment's name.
func deploymentFromHash(replicaSet, hash string) string {
	if hash == "" {
		return ""
	}
	if d, ok := strings.CutSuffix(replicaSet, "-"+hash); ok && d != "" {
		return d
	}
	return ""
}

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

func (w *Watcher) ownerKnown(uid types.UID) (ownerState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.owners[uid]
	if !ok || !st.known {
		return ownerState{}, false
	}
	return *st, true
}

// transformPod makes the informer store a podFacts for each pod.
func transformPod(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		return newPodFacts(p), nil
	}
	return obj, nil // already transformed, or a DeletedFinalStateUnknown
}

func (w *Watcher) onNode(p *podFacts) bool { return p.nodeName == w.cfg.NodeName }

// indexUID: the pod's uid and, for a mirror pod, its static pod's, which
// its containers' cgroups carry. Pods of other nodes are not indexed (the
// field selector keeps them out; this makes sure).
func (w *Watcher) indexUID(obj any) ([]string, error) {
	p, ok := obj.(*podFacts)
	if !ok || !w.onNode(p) {
		return nil, nil
	}
	keys := []string{string(p.UID)}
	if p.mirrorUID != "" && p.mirrorUID != string(p.UID) {
		keys = append(keys, p.mirrorUID)
	}
	return keys, nil
}

func (w *Watcher) indexContainer(obj any) ([]string, error) {
	p, ok := obj.(*podFacts)
	if !ok || !w.onNode(p) {
		return nil, nil
	}
	var keys []string
	for _, c := range p.containers {
		if c.id != "" {
			keys = append(keys, c.id)
		}
	}
	return keys, nil
}

// indexOwner: the uid of the ReplicaSet or Job the pod runs under.
func (w *Watcher) indexOwner(obj any) ([]string, error) {
	p, ok := obj.(*podFacts)
	if !ok || !w.onNode(p) {
		return nil, nil
	}
	if ref, ok := ownerToRead(p); ok {
		return []string{string(ref.uid)}, nil
	}
	return nil, nil
}

// ownerToRead is the ReplicaSet or Job whose owner names the pod's
// Deployment or CronJob.
func ownerToRead(p *podFacts) (ownerRef, bool) {
	o := p.owner
	if (o.group == "apps" && o.kind == "ReplicaSet") || (o.group == "batch" && o.kind == "Job") {
		return ownerRef{namespace: p.Namespace, kind: o.kind, name: o.name, uid: o.uid}, true
	}
	return ownerRef{}, false
}

func (w *Watcher) podAdded(obj any) {
	p, ok := obj.(*podFacts)
	if !ok || !w.onNode(p) {
		return
	}
	w.want(p)
	w.changed(p)
}

func (w *Watcher) podUpdated(oldObj, newObj any) {
	old, ok1 := oldObj.(*podFacts)
	p, ok2 := newObj.(*podFacts)
	if !ok1 || !ok2 || !w.onNode(p) {
		return
	}
	if sameFacts(old, p) {
		return
	}
	w.want(p)
	if ref, ok := ownerToRead(old); ok {
		w.release(ref.uid)
	}
	w.changed(p)
}

func (w *Watcher) podDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if p, ok := obj.(*podFacts); ok {
		if ref, ok := ownerToRead(p); ok {
			w.release(ref.uid)
		}
	}
}

// sameFacts: an update that changed nothing Lookup reads (the transform
// dropped the rest) is no change.
func sameFacts(a, b *podFacts) bool {
	a2, b2 := *a, *b
	a2.ResourceVersion, b2.ResourceVersion = "", ""
	return reflect.DeepEqual(&a2, &b2)
}

func (w *Watcher) changed(p *podFacts) {
	if w.cfg.OnChange == nil {
		return
	}
	w.cfg.OnChange(string(p.UID))
	if p.mirrorUID != "" && p.mirrorUID != string(p.UID) {
		w.cfg.OnChange(p.mirrorUID)
	}
}

// want queues the pod's ReplicaSet or Job to be read, once.
func (w *Watcher) want(p *podFacts) {
	ref, ok := ownerToRead(p)
	if !ok {
		return
	}
	w.mu.Lock()
	_, seen := w.owners[ref.uid]
	if !seen {
		w.owners[ref.uid] = &ownerState{}
		w.untried++
	}
	w.mu.Unlock()
	if !seen {
		w.queue.Add(ref)
	}
}

// release forgets an owner no pod of the node refers to any more.
func (w *Watcher) release(uid types.UID) {
	if refs, err := w.pods.GetIndexer().ByIndex(indexOwner, string(uid)); err != nil || len(refs) > 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.owners[uid]; ok {
		if !st.tried {
			w.untried--
		}
		delete(w.owners, uid)
	}
}

// resolveOwners reads queued owners until the watcher stops.
func (w *Watcher) resolveOwners(ctx context.Context) {
	for {
		ref, quit := w.queue.Get()
		if quit {
			return
		}
		w.resolve(ctx, ref)
		w.queue.Done(ref)
	}
}

func (w *Watcher) resolve(ctx context.Context, ref ownerRef) {
	w.mu.Lock()
	_, wanted := w.owners[ref.uid]
	w.mu.Unlock()
	if !wanted {
		w.queue.Forget(ref)
		return
	}
	name, uid, err := w.readParent(ctx, ref)
	w.mu.Lock()
	st, wanted := w.owners[ref.uid]
	if wanted {
		if !st.tried {
			st.tried = true
			w.untried--
		}
		if err == nil {
			st.known, st.parentName, st.parentUID = true, name, uid
		}
	}
	w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			w.reportError("owners of "+ref.kind+"s", err)
			w.queue.AddRateLimited(ref)
		}
		return
	}
	w.queue.Forget(ref)
	if wanted && w.cfg.OnChange != nil {
		pods, _ := w.pods.GetIndexer().ByIndex(indexOwner, string(ref.uid))
		for _, obj := range pods {
			if p, ok := obj.(*podFacts); ok {
				w.changed(p)
			}
		}
	}
}

// readParent reads the controller that owns a ReplicaSet (a Deployment) or
// a Job (a CronJob). One that is gone, or was replaced by another of the
// same name, has no parent to tell: ("", "", nil).
func (w *Watcher) readParent(ctx context.Context, ref ownerRef) (string, types.UID, error) {
	var (
		meta       metav1.Object
		err        error
		wantGroup  string
		wantParent string
	)
	switch ref.kind {
	case "ReplicaSet":
		wantGroup, wantParent = "apps", "Deployment"
		meta, err = w.client.AppsV1().ReplicaSets(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
	case "Job":
		wantGroup, wantParent = "batch", "CronJob"
		meta, err = w.client.BatchV1().Jobs(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
	default:
		return "", "", nil
	}
	if apierrors.IsNotFound(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("reading %s %s/%s: %w", ref.kind, ref.namespace, ref.name, err)
	}
	if meta.GetUID() != ref.uid {
		return "", "", nil
	}
	parent := metav1.GetControllerOfNoCopy(meta)
	if parent == nil || parent.Kind != wantParent || groupOf(parent.APIVersion) != wantGroup {
		return "", "", nil
	}
	return parent.Name, parent.UID, nil
}

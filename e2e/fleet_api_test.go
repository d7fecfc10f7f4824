package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"
)

// The agent as deployed with the API enrichment on (kubernetes.enabled),
// the built distribution, on a synthetic node of 250 pods plus one real
// pod made by hand. The API server is a FAKE one in the test (HTTPS, the
// list, watch and get requests client-go makes, objects as JSON), reached
// the way a pod reaches it: $KUBERNETES_SERVICE_HOST/PORT and the service
// account's token and CA at their paths, mounted in a mount namespace of
// the agent's own. Real here: the agent's client-go, its TLS, decoding,
// informer and the receiver's use of it; not real: the API server, which
// answers what this test made up.
//
// The pod's server spans carry what only the API knows (container name,
// node, ReplicaSet and Deployment, the service name its labels give), the
// agent asked only for its node's pods, and the figures: the agent's RSS
// with the API and without it, its CPU for the initial sync and for 5000
// pod updates on the watch.
func TestFleetAgentWithAPIOn250PodNode(t *testing.T) {
	requireRoot(t)
	const (
		n       = 20
		port    = 18522
		updates = 5000
	)
	pod := newHandPod(t, systemdDriver, "checkout-7d4b9c8f6d-x2k9q", "shop")
	srv := pod.startServer(t, fmt.Sprintf(":%d", port))

	objs, specs := syntheticNodePods(250)
	objs = append(objs, apiPodOf(pod), &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout-7d4b9c8f6d",
		UID: "rs-checkout", OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "checkout",
			UID: "deploy-checkout", Controller: ptrTrue()}}}})
	api := startFakeAPI(t, objs)
	sink := startTraceSink(t)
	cfg := func(withAPI bool, telemetry int) string {
		return fmt.Sprintf(`receivers:
  ebpf:
    discovery:
      open_ports: "%d"
    kubernetes:
      enabled: %t
exporters:
  otlp_grpc:
    endpoint: %s
    tls: {insecure: true}
service:
  telemetry:
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [otlp_grpc]
`, port, withAPI, sink.addr, telemetry)
	}
	instrumented := func(agent *collector) {
		instance := fmt.Sprintf("%s:%d", syntheticNode, srv.pid())
		require.Eventually(t, func() bool { return agent.out.has("instrumenting process", instance) },
			30*time.Second, 50*time.Millisecond, "the agent never watched %s:\n%s", instance, agent.out)
	}
	drive := func() {
		_, ok := runGoClient(t, fmt.Sprintf("http://%s:%d/api/{i}", pod.podAddr, port), n, 1)
		require.Equal(t, n, ok)
		require.Eventually(t, func() bool { return len(sink.spansOf(srv.pid())) == n }, 15*time.Second, 50*time.Millisecond,
			"%d of %d spans", len(sink.spansOf(srv.pid())), n)
	}

	// Without the API: the baseline.
	plain := runAgentInPod(t, cfg(false, 18534), api)
	instrumented(plain)
	time.Sleep(500 * time.Millisecond)
	plainStartCPU := cpuOf(t, plain.cmd.Process.Pid)
	drive()
	time.Sleep(time.Second)
	plainRSS := rssKiB(plain.cmd.Process.Pid)
	plain.stop()
	for _, s := range sink.spansOf(srv.pid()) {
		assert.Equal(t, pod.name, s.res[k8s.AttrPodName], "from the node")
		assert.Equal(t, "", s.res[k8s.AttrDeploymentName], "only the API knows it")
	}
	sink.reset()

	// With the API.
	agent := runAgentInPod(t, cfg(true, 18535), api)
	instrumented(agent)
	require.Eventually(t, func() bool { return api.watching() }, 30*time.Second, 20*time.Millisecond,
		"the agent never watched the API's pods:\n%s", agent.out)
	require.Eventually(t, func() bool { return api.ownerGets.Load() == api.owners() }, 30*time.Second, 20*time.Millisecond,
		"the agent read %d of %d owners", api.ownerGets.Load(), api.owners())
	time.Sleep(500 * time.Millisecond)
	startCPU := cpuOf(t, agent.cmd.Process.Pid)
	drive()
	for _, s := range sink.spansOf(srv.pid()) {
		want := map[string]string{
			k8s.AttrContainerID: pod.containerID, k8s.AttrPodUID: pod.uid, k8s.AttrPodName: pod.name, k8s.AttrNamespace: "shop",
			k8s.AttrContainerName: "app", k8s.AttrNodeName: syntheticNode, k8s.AttrContainerRuntime: k8s.RuntimeContainerd,
			k8s.AttrReplicaSetName: "checkout-7d4b9c8f6d", k8s.AttrReplicaSetUID: "rs-checkout",
			k8s.AttrDeploymentName: "checkout", k8s.AttrDeploymentUID: "deploy-checkout",
			"service.name": "checkout-api", "service.namespace": "shop", "service.version": "2.1.0",
			"service.instance.id": fmt.Sprintf("%s:%d", syntheticNode, srv.pid()), "host.name": syntheticNode,
		}
		for k, v := range want {
			assert.Equal(t, v, s.res[k], k)
		}
	}
	assert.Equal(t, []string{"spec.nodeName=" + syntheticNode}, api.selectors(), "the agent asks for its node's pods only")

	// Steady updates on the watch, the last of them the pod's new version:
	// once its spans carry it, the agent has read them all.
	pid := agent.cmd.Process.Pid
	idle0 := cpuOf(t, pid)
	time.Sleep(3 * time.Second)
	idleRate := (cpuOf(t, pid) - idle0) / 3 // per second, with nothing to do
	events, _ := podUpdates(objs, specs, updates)
	bumped := apiPodOf(pod)
	bumped.Labels["app.kubernetes.io/version"] = "2.2.0"
	events = append(events, bumped)
	sink.reset()
	cpu0, wall0 := cpuOf(t, pid), time.Now()
	api.modify(t, events)
	// The agent is done when its CPU grows no faster than idle for a second.
	var updCPU, updWall time.Duration
	for last, lastAt := cpu0, wall0; ; {
		time.Sleep(250 * time.Millisecond)
		now := cpuOf(t, pid)
		if now-last > idleRate+30*time.Millisecond {
			last, lastAt = now, time.Now()
			continue
		}
		if time.Since(lastAt) >= time.Second {
			updWall = lastAt.Sub(wall0)
			updCPU = last - cpu0 - idleRate*updWall/time.Second
			break
		}
		require.Less(t, time.Since(wall0), time.Minute, "the agent is still busy")
	}
	require.Eventually(t, func() bool {
		runGoClient(t, fmt.Sprintf("http://%s:%d/api/after", pod.podAddr, port), 1, 1)
		spans := sink.spansOf(srv.pid())
		return len(spans) > 0 && spans[len(spans)-1].res["service.version"] == "2.2.0"
	}, 30*time.Second, 200*time.Millisecond, "the agent never read the last update")
	rss := rssKiB(agent.cmd.Process.Pid)

	t.Logf("the agent on a node of 250 pods and one, AGAINST A FAKE API SERVER in the test (real client-go, TLS, protobuf):")
	t.Logf("  RSS %d KiB with the API, %d KiB without (%+d KiB)", rss, plainRSS, rss-plainRSS)
	t.Logf("  CPU from start to synced: %v with the API, %v without", startCPU, plainStartCPU)
	t.Logf("  %d pod updates read in about %v: %v CPU (%.0f µs each), net of %v/s the agent uses idle",
		updates+1, updWall.Round(time.Millisecond), updCPU.Round(time.Millisecond),
		float64(updCPU.Microseconds())/(updates+1), idleRate.Round(time.Millisecond))
}

// apiPodOf is the pod made by hand as the API shows it: a Deployment's,
// its app container's status naming the container id of its cgroup.
func apiPodOf(p *handPod) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.name, UID: types.UID(p.uid), ResourceVersion: "7",
			Labels: map[string]string{"app.kubernetes.io/name": "checkout-api", "app.kubernetes.io/version": "2.1.0", "pod-template-hash": "7d4b9c8f6d"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-7d4b9c8f6d",
				UID: "rs-checkout", Controller: ptrTrue()}}},
		Spec: corev1.PodSpec{NodeName: syntheticNode, Containers: []corev1.Container{{Name: "app", Image: "shop/checkout:2.1.0"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", ContainerID: "containerd://" + p.containerID, Ready: true}}},
	}
}

func ptrTrue() *bool { b := true; return &b }

// runAgentInPod runs the distribution as the agent's pod would: its
// service account's token and CA mounted where client-go reads them, in
// a mount namespace of its own (the host's /run is untouched), the API
// server's address and the node's name in its environment.
func runAgentInPod(t *testing.T, cfg string, api *fakeAPI) *collector {
	t.Helper()
	bin := os.Getenv("OTELCOL_EBPF_BIN")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OTELCOL_EBPF_BIN is not set: run the tests with `make test`, which builds the distribution")
		}
		t.Skip("OTELCOL_EBPF_BIN is not set: `make test` builds the distribution and sets it")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	sa := filepath.Join(dir, "serviceaccount")
	require.NoError(t, os.Mkdir(sa, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sa, "token"), []byte("fake-token"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(sa, "namespace"), []byte("observability"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(sa, "ca.crt"), api.caPEM, 0o644))
	script := `mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && cp -r "$SA" /run/secrets/kubernetes.io/serviceaccount && exec "$@"`
	c := &collector{cmd: exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
		bin, "--config", path), out: &lines{}}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	host, port, _ := strings.Cut(strings.TrimPrefix(api.srv.URL, "https://"), ":")
	c.cmd.Env = append(os.Environ(), "SA="+sa, "KUBERNETES_SERVICE_HOST="+host, "KUBERNETES_SERVICE_PORT="+port,
		k8s.NodeNameEnv+"="+syntheticNode)
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() { c.stop() })
	return c
}

// fakeAPI answers what an agent asks the API server: its node's pods,
// listed or watched (with the initial events streamed, as client-go asks
// by default), and ReplicaSets and Jobs by name, from the objects the test
// gave. It speaks protobuf to a client that asks for it (as the agent
// does, and as a real API server would answer), else JSON.
type fakeAPI struct {
	srv       *httptest.Server
	caPEM     []byte
	pods      []*corev1.Pod
	byPath    map[string]runtime.Object // owners: /apis/<group>/v1/namespaces/<ns>/<kind>s/<name>
	ownerGets atomic.Int64

	mu       sync.Mutex
	streams  []*watchStream
	selector []string
}

func startFakeAPI(t *testing.T, objs []runtime.Object) *fakeAPI {
	t.Helper()
	a := &fakeAPI{byPath: map[string]runtime.Object{}}
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Pod:
			a.pods = append(a.pods, v.DeepCopy())
		case *appsv1.ReplicaSet:
			a.byPath["/apis/apps/v1/namespaces/"+v.Namespace+"/replicasets/"+v.Name] = v
		case *batchv1.Job:
			a.byPath["/apis/batch/v1/namespaces/"+v.Namespace+"/jobs/"+v.Name] = v
		}
	}
	a.srv = httptest.NewTLSServer(a)
	t.Cleanup(func() {
		a.mu.Lock()
		for _, s := range a.streams {
			close(s.ch)
		}
		a.streams = nil
		a.mu.Unlock()
		a.srv.Close()
	})
	a.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	return a
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	proto := strings.Contains(r.Header.Get("Accept"), runtime.ContentTypeProtobuf)
	switch {
	case r.URL.Path == "/api/v1/pods" && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		a.note(q.Get("fieldSelector"))
		a.watch(w, r, proto, q.Get("sendInitialEvents") == "true")
	case r.URL.Path == "/api/v1/pods":
		a.note(q.Get("fieldSelector"))
		list := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "100"}}
		for _, p := range a.pods {
			list.Items = append(list.Items, *p)
		}
		writeObject(w, http.StatusOK, proto, list)
	case a.byPath[r.URL.Path] != nil:
		a.ownerGets.Add(1)
		writeObject(w, http.StatusOK, proto, a.byPath[r.URL.Path].DeepCopyObject())
	default:
		writeObject(w, http.StatusNotFound, proto, &metav1.Status{Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound, Message: r.URL.Path + " not found"})
	}
}

// watchStream is one client's watch.
type watchStream struct {
	proto bool
	ch    chan []byte
}

// watch streams watch events: with initial, every pod as ADDED and the
// bookmark that ends them; then what modify sends, until the client goes.
func (a *fakeAPI) watch(w http.ResponseWriter, r *http.Request, proto, initial bool) {
	if proto {
		w.Header().Set("Content-Type", runtime.ContentTypeProtobuf+";stream=watch")
	} else {
		w.Header().Set("Content-Type", runtime.ContentTypeJSON)
	}
	w.WriteHeader(http.StatusOK)
	if initial {
		for _, p := range a.pods {
			w.Write(watchEvent(proto, watch.Added, p))
		}
		w.Write(watchEvent(proto, watch.Bookmark, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "100",
			Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}))
	}
	w.(http.Flusher).Flush()
	ws := &watchStream{proto: proto, ch: make(chan []byte, 8192)}
	a.mu.Lock()
	a.streams = append(a.streams, ws)
	a.mu.Unlock()
	defer a.drop(ws)
	for {
		select {
		case <-r.Context().Done():
			return
		case b, ok := <-ws.ch:
			if !ok {
				return
			}
			w.Write(b)
			if len(ws.ch) == 0 {
				w.(http.Flusher).Flush()
			}
		}
	}
}

func (a *fakeAPI) drop(ws *watchStream) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.streams {
		if s == ws {
			a.streams = append(a.streams[:i], a.streams[i+1:]...)
			return
		}
	}
}

func (a *fakeAPI) note(selector string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.selector {
		if s == selector {
			return
		}
	}
	a.selector = append(a.selector, selector)
}

// selectors are the field selectors the pods were asked for with.
func (a *fakeAPI) selectors() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.selector...)
}

func (a *fakeAPI) watching() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.streams) > 0
}

func (a *fakeAPI) owners() int64 { return int64(len(a.byPath)) }

// modify sends pods as MODIFIED events to every watch.
func (a *fakeAPI) modify(t *testing.T, pods []*corev1.Pod) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	require.NotEmpty(t, a.streams, "nobody watches")
	for i, p := range pods {
		p = p.DeepCopy()
		p.ResourceVersion = strconv.Itoa(200 + i)
		for _, s := range a.streams {
			s.ch <- watchEvent(s.proto, watch.Modified, p)
		}
	}
}

// protobuf is how the API server encodes objects and watch events in
// protobuf.
var protobuf, _ = runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)

// encodeObject encodes obj, with its kind and version set, in protobuf
// (with the API's envelope) or JSON.
func encodeObject(proto bool, obj runtime.Object) []byte {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil {
		panic(err)
	}
	ser := runtime.Encoder(protobuf.Serializer)
	if !proto {
		ser = scheme.Codecs.LegacyCodec()
	}
	b, err := runtime.Encode(scheme.Codecs.EncoderForVersion(ser, gvks[0].GroupVersion()), obj)
	if err != nil {
		panic(err)
	}
	return b
}

// watchEvent is one event of a watch stream: a length-prefixed protobuf
// frame, or a line of JSON.
func watchEvent(proto bool, kind watch.EventType, obj runtime.Object) []byte {
	ev := &metav1.WatchEvent{Type: string(kind), Object: runtime.RawExtension{Raw: encodeObject(proto, obj)}}
	if !proto {
		b, err := json.Marshal(ev)
		if err != nil {
			panic(err)
		}
		return append(b, '\n')
	}
	var buf bytes.Buffer
	b, err := runtime.Encode(protobuf.StreamSerializer.Serializer, ev)
	if err != nil {
		panic(err)
	}
	if _, err := protobuf.StreamSerializer.Framer.NewFrameWriter(&buf).Write(b); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func writeObject(w http.ResponseWriter, code int, proto bool, obj runtime.Object) {
	if proto {
		w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
	} else {
		w.Header().Set("Content-Type", runtime.ContentTypeJSON)
	}
	w.WriteHeader(code)
	w.Write(encodeObject(proto, obj))
}

// cpuOf is the CPU time process pid used so far (user and system, in the
// kernel's 10 ms ticks).
func cpuOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

package pidfilterprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func res(kv ...any) pcommon.Map {
	m := pcommon.NewMap()
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case string:
			m.PutStr(kv[i].(string), v)
		case int:
			m.PutInt(kv[i].(string), int64(v))
		case float64:
			m.PutDouble(kv[i].(string), v)
		}
	}
	return m
}

func newMatcher(t *testing.T, include, exclude []string, missing string) *matcher {
	t.Helper()
	p, err := newPidFilter(componentSettings(), &Config{Include: include, Exclude: exclude, Missing: missing})
	require.NoError(t, err)
	return p.current.Load()
}

func TestMatching(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		missing          string
		res              pcommon.Map
		keep             bool
	}{
		{"host:pid matches", []string{"node-1:1234"}, nil, "keep", res("service.instance.id", "node-1:1234"), true},
		{"host compares case-insensitively", []string{"Node-1:1234"}, nil, "keep", res("service.instance.id", "NODE-1:1234"), true},
		{"other host", []string{"node-1:1234"}, nil, "keep", res("service.instance.id", "node-2:1234"), false},
		{"other pid", []string{"node-1:1234"}, nil, "keep", res("service.instance.id", "node-1:1235"), false},
		{"*:pid matches any host", []string{"*:5678"}, nil, "keep", res("service.instance.id", "anything:5678"), true},
		{"bare pid matches any host", []string{"4242"}, nil, "keep", res("service.instance.id", "x:4242"), true},
		{"empty include keeps all", nil, nil, "keep", res("service.instance.id", "x:1"), true},
		{"exclude after include", []string{"*:7"}, []string{"node-1:7"}, "keep", res("service.instance.id", "node-1:7"), false},
		{"exclude spares other hosts", []string{"*:7"}, []string{"node-1:7"}, "keep", res("service.instance.id", "node-2:7"), true},
		{"exclude alone", nil, []string{"99"}, "keep", res("service.instance.id", "h:99"), false},
		{"fallback to process.pid and host.name", []string{"node-1:1234"}, nil, "keep",
			res("service.instance.id", "3f2a-uuid-like", "process.pid", 1234, "host.name", "node-1"), true},
		{"process.pid as a string", []string{"node-1:1234"}, nil, "keep", res("process.pid", "1234", "host.name", "Node-1"), true},
		{"process.pid without host.name matches only any-host entries", []string{"node-1:1234", "*:77"}, nil, "keep", res("process.pid", 1234), false},
		{"process.pid without host.name, any-host entry", []string{"*:77"}, nil, "keep", res("process.pid", 77), true},
		{"no identity, missing keep", []string{"*:1"}, nil, "keep", res("service.name", "x"), true},
		{"no identity, missing drop", []string{"*:1"}, nil, "drop", res("service.name", "x"), false},
		{"unusable process.pid is no identity", []string{"*:1"}, nil, "drop", res("process.pid", 1.5), false},
		{"instance id that is not host:pid, no pid", []string{"*:1"}, nil, "drop", res("service.instance.id", "pod-abc"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.keep, newMatcher(t, tt.include, tt.exclude, tt.missing).keep(tt.res))
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	m := newMatcher(t, []string{"node-1:1234", "*:5678"}, []string{"node-9:1"}, "keep")
	for _, r := range []pcommon.Map{
		res("service.instance.id", "NODE-1:1234"),
		res("service.instance.id", "node-2:9"),
		res("process.pid", 5678, "host.name", "Node-3"),
	} {
		assert.Zero(t, testing.AllocsPerRun(100, func() { m.keep(r) }))
	}
}

const (
	fullCID  = "13185af50b1b041b4b2bb6009b4d2dfba3a6eb2ef813277a5757f99f26bb9d6d"
	otherCID = "650c5854b985beb127c01ed4f1343564e69b8ea3532eb81bc3101e0cf8ae059f"
)

func TestMatchingKubernetes(t *testing.T) {
	pod := func(ns, name string, kv ...any) pcommon.Map {
		return res(append([]any{"k8s.namespace.name", ns, "k8s.pod.name", name}, kv...)...)
	}
	tests := []struct {
		name             string
		include, exclude []string
		missing          string
		res              pcommon.Map
		keep             bool
	}{
		{"pod matches", []string{"pod:shop/checkout-0"}, nil, "keep", pod("shop", "checkout-0"), true},
		{"other pod", []string{"pod:shop/checkout-0"}, nil, "keep", pod("shop", "checkout-1"), false},
		{"same pod name, other namespace", []string{"pod:shop/checkout-0"}, nil, "keep", pod("staging", "checkout-0"), false},
		{"every pod of a namespace", []string{"pod:shop/*"}, nil, "keep", pod("shop", "anything"), true},
		{"namespace wildcard is not a prefix", []string{"pod:shop/*"}, nil, "keep", pod("shopping", "x"), false},
		{"pod entry beside a process entry: the process matches", []string{"pod:shop/web", "node-1:7"}, nil, "keep",
			res("service.instance.id", "node-1:7"), true},
		{"a resource with both matches by either", []string{"pod:shop/web"}, nil, "keep",
			pod("shop", "web", "service.instance.id", "node-1:7"), true},
		{"pod name without namespace is no pod", []string{"pod:shop/web"}, nil, "drop", res("k8s.pod.name", "web"), false},
		{"empty pod name is no pod", []string{"pod:shop/*"}, nil, "drop", pod("shop", ""), false},
		{"exclude a namespace", nil, []string{"pod:kube-system/*"}, "keep", pod("kube-system", "coredns-abc", "service.instance.id", "n:5"), false},
		{"exclude a namespace spares others", nil, []string{"pod:kube-system/*"}, "keep", pod("shop", "web"), true},
		{"include a namespace, exclude one pod", []string{"pod:shop/*"}, []string{"pod:shop/debug"}, "keep", pod("shop", "debug"), false},

		{"full container id", []string{"container:" + fullCID}, nil, "keep", res("container.id", fullCID), true},
		{"other container", []string{"container:" + fullCID}, nil, "keep", res("container.id", otherCID), false},
		{"docker's 12-digit id", []string{"container:" + fullCID[:12]}, nil, "keep", res("container.id", fullCID), true},
		{"crictl's 13-digit id", []string{"container:" + fullCID[:13]}, nil, "keep", res("container.id", fullCID), true},
		{"prefix that does not match past 12 digits", []string{"container:" + fullCID[:12] + "f"}, nil, "keep", res("container.id", fullCID), false},
		{"id from a pod status", []string{"container:containerd://" + fullCID}, nil, "keep", res("container.id", fullCID), true},
		{"upper-case entry", []string{"container:" + strings.ToUpper(fullCID)}, nil, "keep", res("container.id", fullCID), true},
		{"resource's short id does not match a longer entry", []string{"container:" + fullCID[:20]}, nil, "keep", res("container.id", fullCID[:12]), false},
		{"exclude a container", []string{"*:7"}, []string{"container:" + fullCID[:12]}, "keep",
			res("service.instance.id", "n:7", "container.id", fullCID), false},

		// What names nothing depends on the kinds of entries configured.
		{"pod entries: a process with no pod is not missing", []string{"pod:shop/web"}, nil, "keep", res("service.instance.id", "n:1"), false},
		{"pod entries: nothing at all is missing", []string{"pod:shop/web"}, nil, "keep", res("service.name", "x"), true},
		{"pod entries: a pod with no process is identified", []string{"pod:shop/web"}, nil, "drop", pod("shop", "web"), true},
		{"container entries: a container with no process is identified", nil, []string{"container:" + fullCID}, "drop",
			res("container.id", otherCID), true},
		{"process entries only: pods are not read (unchanged)", []string{"*:1"}, nil, "keep", pod("shop", "web"), true},
		{"process entries only: pods are not read, drop", []string{"*:1"}, nil, "drop", pod("shop", "web"), false},

		// Entries that only look like the new ones are what they always were.
		{"pod:123 is host pod, pid 123", []string{"pod:123"}, nil, "keep", res("service.instance.id", "POD:123"), true},
		{"container:4242 is host container, pid 4242", []string{"container:4242"}, nil, "keep", res("service.instance.id", "container:4242"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.keep, newMatcher(t, tt.include, tt.exclude, tt.missing).keep(tt.res))
		})
	}
}

func TestParseKubernetesEntries(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want entry
		err  string
	}{
		{in: "pod:shop/checkout-7d9f8b6c5d-x2x4z", want: entry{kind: kindPod, namespace: "shop", pod: "checkout-7d9f8b6c5d-x2x4z"}},
		{in: "pod:shop/*", want: entry{kind: kindPod, namespace: "shop"}},
		{in: "pod:shop/web.v2", want: entry{kind: kindPod, namespace: "shop", pod: "web.v2"}},
		{in: "container:" + fullCID, want: entry{kind: kindContainer, container: fullCID}},
		{in: "container:cri-o://" + fullCID[:16], want: entry{kind: kindContainer, container: fullCID[:16]}},
		{in: "pod:12", want: entry{kind: kindProcess, host: "pod", pid: 12}},
		{in: "pod:shop", err: `entry "pod:shop": want pod:<namespace>/<pod name> or pod:<namespace>/*`},
		{in: "pod:shop/a/b", err: `entry "pod:shop/a/b": want pod:<namespace>/<pod name>`},
		{in: "pod:/web", err: `entry "pod:/web": "" is not a namespace name`},
		{in: "pod:Shop/web", err: `entry "pod:Shop/web": "Shop" is not a namespace name`},
		{in: "pod:shop/", err: `entry "pod:shop/": "" is not a pod name`},
		{in: "pod:shop/Web_1", err: `entry "pod:shop/Web_1": "Web_1" is not a pod name`},
		{in: "pod:shop/web-*", err: `entry "pod:shop/web-*": "web-*" is not a pod name`},
		{in: "container:", err: `entry "container:": "" is not a container id (12 to 64 hex digits)`},
		{in: "container:abc", err: `entry "container:abc": "abc" is not a container id`},
		{in: "container:" + fullCID + "0", err: `is not a container id`},
		{in: "container:xyz123456789012", err: `"xyz123456789012" is not a container id`},
		{in: "container:12345678901", want: entry{kind: kindContainer, container: "12345678901"}, err: `"12345678901" is not a container id`},
	} {
		got, err := parseEntry(tt.in)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestKubernetesMatchDoesNotAllocate(t *testing.T) {
	m := newMatcher(t, []string{"pod:shop/web", "pod:batch/*", "container:" + fullCID[:12], "node-1:1"},
		[]string{"pod:shop/debug", "container:" + otherCID}, "keep")
	for _, r := range []pcommon.Map{
		res("k8s.namespace.name", "shop", "k8s.pod.name", "web", "service.instance.id", "node-2:5"),
		res("k8s.namespace.name", "batch", "k8s.pod.name", "job-1"),
		res("container.id", fullCID, "process.pid", 9, "host.name", "Node-3"),
		res("container.id", otherCID),
		res("service.name", "nothing"),
	} {
		assert.Zero(t, testing.AllocsPerRun(100, func() { m.keep(r) }))
	}
}

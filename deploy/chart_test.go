package deploy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/otelcol-ebpf/ebpfreceiver/deploy/internal/helmrender"
)

const (
	agentName   = "otelcol-ebpf-agent"
	gatewayName = "otelcol-ebpf-gateway"
)

// The capability sets, exactly; README.md's table says why each is there.
var (
	defaultCaps = []corev1.Capability{"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
	headersCaps = []corev1.Capability{"BPF", "PERFMON", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
	memlockCaps = []corev1.Capability{"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_RESOURCE"}
)

// TestLint runs helm lint's rules on the chart with the default values and
// each example, and with the values every other test of this file uses.
func TestLint(t *testing.T) {
	cases := map[string]struct {
		examples  []string
		overrides map[string]any
	}{
		"defaults": {},
		"every option": {overrides: map[string]any{
			"kubernetes": map[string]any{"enabled": false},
			"agent": map[string]any{
				"ebpf":     map[string]any{"context_propagation": "headers"},
				"hostProc": map[string]any{"enabled": true},
				"otlp":     map[string]any{"hostPort": true},
				"security": map[string]any{"sysResource": true},
			},
			"diagnostics": map[string]any{"enabled": true},
			"backend":     map[string]any{"otlp": map[string]any{"endpoint": "backend.example:4317"}},
		}},
		"privileged": {overrides: map[string]any{"agent": map[string]any{"security": map[string]any{"privileged": true}}}},
	}
	for _, e := range exampleFiles(t) {
		cases["example "+e] = struct {
			examples  []string
			overrides map[string]any
		}{examples: []string{e}}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			vals, err := values(c.examples, c.overrides)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range helmrender.Lint(helmrender.ChartDir, vals) {
				if m.Severity >= 2 { // support.WarningSev
					t.Errorf("helm lint: %s", m.Error())
				} else {
					t.Logf("helm lint: %s", m.Error())
				}
			}
		})
	}
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(helmrender.ExamplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatal("no example values")
	}
	return out
}

// TestDefaults checks the objects of a default install, one by one.
func TestDefaults(t *testing.T) {
	_, o := render(t, nil, nil)
	equal(t, "objects", o.Count, 6)
	equal(t, "ServiceAccounts", keys(o.ServiceAccounts), []string{agentName})
	equal(t, "ConfigMaps", keys(o.ConfigMaps), []string{agentName})
	equal(t, "Services", keys(o.Services), []string{agentName})
	equal(t, "Deployments", len(o.Deployments), 0)
	ds := o.DaemonSets[agentName]
	if ds == nil {
		t.Fatalf("no DaemonSet %s", agentName)
	}
	pod := ds.Spec.Template.Spec
	c := container(t, pod)

	t.Run("hostPID", func(t *testing.T) {
		equal(t, "hostPID", pod.HostPID, true)
		equal(t, "hostNetwork", pod.HostNetwork, false)
	})
	t.Run("security context", func(t *testing.T) {
		checkNarrowSecurity(t, c, defaultCaps)
	})
	t.Run("mounts", func(t *testing.T) {
		equal(t, "mounts", mounts(pod, c), []string{
			"/conf <- configMap otelcol-ebpf-agent (ro)",
			"/sys/fs/cgroup <- hostPath /sys/fs/cgroup Directory (ro)",
			"/sys/kernel/btf <- hostPath /sys/kernel/btf Directory (ro)",
			"/sys/kernel/tracing <- hostPath /sys/kernel/tracing  (ro)",
		})
	})
	cfg := collectorConfig(t, o.ConfigMaps[agentName])
	t.Run("probes", func(t *testing.T) { checkProbes(t, c, cfg) })
	t.Run("env", func(t *testing.T) {
		equal(t, "K8S_NODE_NAME", env(t, c, "K8S_NODE_NAME").ValueFrom,
			&corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}})
		equal(t, "POD_IP", env(t, c, "POD_IP").ValueFrom,
			&corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}})
	})
	t.Run("memory", func(t *testing.T) {
		equal(t, "limits.memory", c.Resources.Limits.Memory().String(), "512Mi")
		equal(t, "requests.memory", c.Resources.Requests.Memory().String(), "256Mi")
		checkMemory(t, c, cfg, 80, 25, 80)
	})
	t.Run("rbac", func(t *testing.T) { checkRBAC(t, o, pod, true) })
	t.Run("checksum", func(t *testing.T) { checkChecksum(t, ds.Spec.Template.Annotations, o.ConfigMaps[agentName]) })
	t.Run("scheduling", func(t *testing.T) {
		equal(t, "tolerations", pod.Tolerations, []corev1.Toleration{{Operator: corev1.TolerationOpExists}})
		equal(t, "nodeSelector", pod.NodeSelector, map[string]string{"kubernetes.io/os": "linux"})
		equal(t, "updateStrategy", ds.Spec.UpdateStrategy, appsv1.DaemonSetUpdateStrategy{
			Type:          appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(1))},
		})
		equal(t, "selector matches the pod", ds.Spec.Selector.MatchLabels, selectorOf(ds.Spec.Template.Labels))
		equal(t, "image", c.Image, "otelcol-ebpf:0.1.0")
	})
	t.Run("config", func(t *testing.T) {
		checkComponents(t, cfg, distributionComponents(t))
		ebpf := at(t, cfg, "receivers", "ebpf").(map[string]any)
		checkSettings(t, "receivers.ebpf", ebpf, receiverSettings(t))
		equal(t, "kubernetes", ebpf["kubernetes"], any(map[string]any{"enabled": true}))
		equal(t, "proc_root", ebpf["proc_root"], nil)
		for _, p := range []string{"traces", "metrics"} {
			equal(t, p+" receivers", strs(t, at(t, cfg, "service", "pipelines", p, "receivers")), []string{"ebpf", "otlp"})
			equal(t, p+" processors", strs(t, at(t, cfg, "service", "pipelines", p, "processors")), []string{"memory_limiter", "batch"})
			equal(t, p+" exporters", strs(t, at(t, cfg, "service", "pipelines", p, "exporters")), []string{"debug"})
		}
		equal(t, "logs receivers", strs(t, at(t, cfg, "service", "pipelines", "logs", "receivers")), []string{"otlp"})
		equal(t, "debug verbosity", at(t, cfg, "exporters", "debug", "verbosity"), any("basic"))
	})
	t.Run("otlp service", func(t *testing.T) {
		svc := o.Services[agentName]
		equal(t, "internalTrafficPolicy", svc.Spec.InternalTrafficPolicy, ptr(corev1.ServiceInternalTrafficPolicyLocal))
		equal(t, "selector", svc.Spec.Selector, selectorOf(ds.Spec.Template.Labels))
		checkServicePorts(t, svc, c)
		for _, p := range c.Ports {
			equal(t, "hostPort of "+p.Name, p.HostPort, int32(0))
		}
	})
}

// TestAgentOptions renders each option that changes the agent's pod.
func TestAgentOptions(t *testing.T) {
	agent := func(v map[string]any) map[string]any { return map[string]any{"agent": v} }
	t.Run("context propagation adds NET_ADMIN", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"ebpf": map[string]any{"context_propagation": "headers"}}))
		c := container(t, o.DaemonSets[agentName].Spec.Template.Spec)
		checkNarrowSecurity(t, c, headersCaps)
		equal(t, "context_propagation", at(t, collectorConfig(t, o.ConfigMaps[agentName]), "receivers", "ebpf", "context_propagation"), any("headers"))
	})
	t.Run("kernels before 5.11 add SYS_RESOURCE", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"security": map[string]any{"sysResource": true}}))
		checkNarrowSecurity(t, container(t, o.DaemonSets[agentName].Spec.Template.Spec), memlockCaps)
	})
	t.Run("privileged fallback", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"security": map[string]any{"privileged": true}}))
		sc := container(t, o.DaemonSets[agentName].Spec.Template.Spec).SecurityContext
		equal(t, "securityContext", sc, &corev1.SecurityContext{
			Privileged: ptr(true), ReadOnlyRootFilesystem: ptr(true),
			RunAsUser: ptr(int64(0)), RunAsGroup: ptr(int64(0)), RunAsNonRoot: ptr(false),
		})
	})
	t.Run("unconfined seccomp", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"security": map[string]any{"seccompProfile": map[string]any{"type": "Unconfined"}}}))
		sc := container(t, o.DaemonSets[agentName].Spec.Template.Spec).SecurityContext
		equal(t, "seccompProfile", sc.SeccompProfile, &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined})
	})
	t.Run("separate proc root", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"hostProc": map[string]any{"enabled": true}, "tracefs": false}))
		pod := o.DaemonSets[agentName].Spec.Template.Spec
		equal(t, "mounts", mounts(pod, container(t, pod)), []string{
			"/conf <- configMap otelcol-ebpf-agent (ro)",
			"/host/proc <- hostPath /proc Directory (ro)",
			"/sys/fs/cgroup <- hostPath /sys/fs/cgroup Directory (ro)",
			"/sys/kernel/btf <- hostPath /sys/kernel/btf Directory (ro)",
		})
		ebpf := at(t, collectorConfig(t, o.ConfigMaps[agentName]), "receivers", "ebpf").(map[string]any)
		equal(t, "proc_root", ebpf["proc_root"], any("/host/proc"))
		checkSettings(t, "receivers.ebpf", ebpf, receiverSettings(t))
	})
	t.Run("kubernetes enrichment off", func(t *testing.T) {
		_, o := render(t, nil, map[string]any{"kubernetes": map[string]any{"enabled": false}})
		checkRBAC(t, o, o.DaemonSets[agentName].Spec.Template.Spec, false)
		equal(t, "kubernetes", at(t, collectorConfig(t, o.ConfigMaps[agentName]), "receivers", "ebpf", "kubernetes"), any(map[string]any{"enabled": false}))
	})
	t.Run("hostPort", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"otlp": map[string]any{"hostPort": true}}))
		c := container(t, o.DaemonSets[agentName].Spec.Template.Spec)
		for _, p := range c.Ports {
			want := int32(0)
			if strings.HasPrefix(p.Name, "otlp-") {
				want = p.ContainerPort
			}
			equal(t, "hostPort of "+p.Name, p.HostPort, want)
		}
	})
	t.Run("no otlp receiver", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"otlp": map[string]any{"enabled": false}}))
		cfg := collectorConfig(t, o.ConfigMaps[agentName])
		equal(t, "receivers", keys(at(t, cfg, "receivers").(map[string]any)), []string{"ebpf"})
		equal(t, "pipelines", keys(at(t, cfg, "service", "pipelines").(map[string]any)), []string{"metrics", "traces"})
		equal(t, "Services", len(o.Services), 0)
		checkComponents(t, cfg, distributionComponents(t))
	})
	t.Run("diagnostics", func(t *testing.T) {
		_, o := render(t, nil, map[string]any{"diagnostics": map[string]any{"enabled": true}})
		cfg := collectorConfig(t, o.ConfigMaps[agentName])
		equal(t, "extensions", strs(t, at(t, cfg, "service", "extensions")), []string{"health_check", "pprof", "zpages"})
		equal(t, "pprof endpoint", at(t, cfg, "extensions", "pprof", "endpoint"), any("localhost:1777"))
		checkComponents(t, cfg, distributionComponents(t))
	})
	t.Run("backend", func(t *testing.T) {
		_, o := render(t, nil, map[string]any{
			"backend": map[string]any{"otlp": map[string]any{"endpoint": "tempo.observability.svc:4317", "headers": map[string]any{"x-tenant": "a"}}},
			"debug":   map[string]any{"enabled": false},
		})
		cfg := collectorConfig(t, o.ConfigMaps[agentName])
		equal(t, "otlp_grpc exporter", at(t, cfg, "exporters", "otlp_grpc"), any(map[string]any{
			"endpoint": "tempo.observability.svc:4317", "headers": map[string]any{"x-tenant": "a"}, "tls": map[string]any{"insecure": true},
		}))
		equal(t, "exporters", strs(t, at(t, cfg, "service", "pipelines", "traces", "exporters")), []string{"otlp_grpc"})
	})
	t.Run("config overrides merge", func(t *testing.T) {
		_, o := render(t, nil, agent(map[string]any{"config": map[string]any{
			"processors": map[string]any{"batch": map[string]any{"timeout": "5s"}},
		}}))
		cfg := collectorConfig(t, o.ConfigMaps[agentName])
		equal(t, "batch", at(t, cfg, "processors", "batch"), any(map[string]any{"timeout": "5s"}))
		equal(t, "memory_limiter kept", at(t, cfg, "processors", "memory_limiter", "check_interval"), any("1s"))
	})
}

// TestMemoryDerivation renders limits written in each unit the chart reads.
func TestMemoryDerivation(t *testing.T) {
	for _, c := range []struct {
		limit                     string
		limitPct, spikePct, goPct int64
	}{
		{"512Mi", 80, 25, 80},
		{"1Gi", 80, 25, 80},
		{"1000M", 80, 25, 80},
		{"2147483648", 80, 25, 80},
		{"786432Ki", 70, 20, 90},
	} {
		t.Run(c.limit, func(t *testing.T) {
			_, o := render(t, nil, map[string]any{"agent": map[string]any{
				"resources": map[string]any{"limits": map[string]any{"memory": c.limit}},
				"memory":    map[string]any{"limitPercentage": c.limitPct, "spikeLimitPercentage": c.spikePct, "goMemLimitPercentage": c.goPct},
			}})
			checkMemory(t, container(t, o.DaemonSets[agentName].Spec.Template.Spec), collectorConfig(t, o.ConfigMaps[agentName]), c.limitPct, c.spikePct, c.goPct)
		})
	}
}

// TestRefusedValues checks that values the chart cannot honour stop the
// rendering with a message that names them.
func TestRefusedValues(t *testing.T) {
	for name, c := range map[string]struct {
		overrides map[string]any
		want      string
	}{
		"no memory limit": {map[string]any{"agent": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": nil}}}},
			"agent.resources.limits.memory is required"},
		"decimal quantity": {map[string]any{"agent": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "1.5Gi"}}}},
			`"1.5Gi" is not a memory quantity`},
		"tiny limit": {map[string]any{"agent": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "32Mi"}}}},
			"at least 64 MiB"},
		"spike over limit": {map[string]any{"agent": map[string]any{"memory": map[string]any{"spikeLimitPercentage": 90}}},
			"spikeLimitPercentage (90) must be below limitPercentage (80)"},
		"nothing to export to": {map[string]any{"debug": map[string]any{"enabled": false}},
			"nothing to export to"},
		"unknown propagation": {map[string]any{"agent": map[string]any{"ebpf": map[string]any{"context_propagation": "b3"}}},
			`context_propagation: "b3" must be none or headers`},
		"gateway without memory limit": {map[string]any{"gateway": map[string]any{"enabled": true, "resources": map[string]any{"limits": nil}}},
			"gateway.resources.limits.memory is required"},
		"gateway without policy": {map[string]any{"gateway": map[string]any{"enabled": true, "tailSampling": map[string]any{
			"keepErrors": false, "latencyThresholdMs": 0, "probabilisticPercentage": 0}}},
			"no policy left"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := renderErr(nil, c.overrides)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestGateway checks the agent -> gateway -> backend install.
func TestGateway(t *testing.T) {
	res, o := render(t, []string{"gateway.yaml"}, map[string]any{
		"backend": map[string]any{"otlp": map[string]any{"endpoint": "tempo.observability.svc:4317"}},
	})
	equal(t, "objects", o.Count, 10)
	equal(t, "Deployments", keys(o.Deployments), []string{gatewayName})
	equal(t, "ServiceAccounts", keys(o.ServiceAccounts), []string{agentName, gatewayName})
	equal(t, "ConfigMaps", keys(o.ConfigMaps), []string{agentName, gatewayName})
	equal(t, "Services", keys(o.Services), []string{agentName, gatewayName})
	dep := o.Deployments[gatewayName]
	pod := dep.Spec.Template.Spec
	c := container(t, pod)
	gw := collectorConfig(t, o.ConfigMaps[gatewayName])
	agent := collectorConfig(t, o.ConfigMaps[agentName])

	t.Run("deployment", func(t *testing.T) {
		equal(t, "replicas", dep.Spec.Replicas, ptr(int32(1)))
		equal(t, "selector matches the pod", dep.Spec.Selector.MatchLabels, selectorOf(dep.Spec.Template.Labels))
		equal(t, "serviceAccountName", pod.ServiceAccountName, gatewayName)
		equal(t, "automountServiceAccountToken", pod.AutomountServiceAccountToken, ptr(false))
		equal(t, "hostPID", pod.HostPID, false)
		equal(t, "mounts", mounts(pod, c), []string{"/conf <- configMap otelcol-ebpf-gateway (ro)"})
		equal(t, "pod securityContext", pod.SecurityContext, &corev1.PodSecurityContext{
			RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(65534)), RunAsGroup: ptr(int64(65534)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		})
		equal(t, "securityContext", c.SecurityContext, &corev1.SecurityContext{
			Privileged: ptr(false), AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		})
		checkProbes(t, c, gw)
		checkMemory(t, c, gw, 80, 25, 80)
		checkChecksum(t, dep.Spec.Template.Annotations, o.ConfigMaps[gatewayName])
	})
	t.Run("headless service", func(t *testing.T) {
		svc := o.Services[gatewayName]
		equal(t, "clusterIP", svc.Spec.ClusterIP, corev1.ClusterIPNone)
		equal(t, "selector", svc.Spec.Selector, selectorOf(dep.Spec.Template.Labels))
		checkServicePorts(t, svc, c)
		equal(t, "ports", []int32{svc.Spec.Ports[0].Port, svc.Spec.Ports[1].Port}, []int32{4317, 4318})
	})
	t.Run("gateway config", func(t *testing.T) {
		checkComponents(t, gw, distributionComponents(t))
		equal(t, "traces processors", strs(t, at(t, gw, "service", "pipelines", "traces", "processors")),
			[]string{"memory_limiter", "tail_sampling", "batch"})
		for _, p := range []string{"traces", "metrics", "logs"} {
			equal(t, p+" receivers", strs(t, at(t, gw, "service", "pipelines", p, "receivers")), []string{"otlp"})
			equal(t, p+" exporters", strs(t, at(t, gw, "service", "pipelines", p, "exporters")), []string{"otlp_grpc", "debug"})
		}
		equal(t, "backend", at(t, gw, "exporters", "otlp_grpc", "endpoint"), any("tempo.observability.svc:4317"))
		equal(t, "policies", at(t, gw, "processors", "tail_sampling", "policies"), any([]any{
			map[string]any{"name": "errors", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"ERROR"}}},
			map[string]any{"name": "slow", "type": "latency", "latency": map[string]any{"threshold_ms": int64(500)}},
			map[string]any{"name": "baseline", "type": "probabilistic", "probabilistic": map[string]any{"sampling_percentage": int64(10)}},
		}))
		equal(t, "decision_wait", at(t, gw, "processors", "tail_sampling", "decision_wait"), any("10s"))
	})
	t.Run("agents export to the gateway", func(t *testing.T) {
		checkComponents(t, agent, distributionComponents(t))
		equal(t, "agent exporters", keys(at(t, agent, "exporters").(map[string]any)), []string{"otlp_grpc"})
		endpoint := at(t, agent, "exporters", "otlp_grpc", "endpoint").(string)
		equal(t, "endpoint", endpoint, fmt.Sprintf("%s.%s.svc:4317", gatewayName, helmrender.Namespace))
		for _, p := range []string{"traces", "metrics", "logs"} {
			equal(t, p+" exporters", strs(t, at(t, agent, "service", "pipelines", p, "exporters")), []string{"otlp_grpc"})
		}
	})
	t.Run("notes", func(t *testing.T) {
		if !strings.Contains(res.Notes, "kubectl -n otelcol-ebpf logs -f deployment/otelcol-ebpf-gateway") || strings.Contains(res.Notes, "agent pod on the node") {
			t.Errorf("NOTES do not say where spans are printed:\n%s", res.Notes)
		}
		if strings.Contains(res.Notes, "WARNING") {
			t.Errorf("NOTES warn about a sound install:\n%s", res.Notes)
		}
	})
	t.Run("tail sampling values", func(t *testing.T) {
		_, o := render(t, []string{"gateway.yaml"}, map[string]any{"gateway": map[string]any{"tailSampling": map[string]any{
			"keepErrors": false, "latencyThresholdMs": 2000, "probabilisticPercentage": 0.5}}})
		equal(t, "policies", at(t, collectorConfig(t, o.ConfigMaps[gatewayName]), "processors", "tail_sampling", "policies"), any([]any{
			map[string]any{"name": "slow", "type": "latency", "latency": map[string]any{"threshold_ms": int64(2000)}},
			map[string]any{"name": "baseline", "type": "probabilistic", "probabilistic": map[string]any{"sampling_percentage": 0.5}},
		}))
	})
	t.Run("several replicas warn", func(t *testing.T) {
		res, _ := render(t, []string{"gateway.yaml"}, map[string]any{"gateway": map[string]any{"replicas": 3}})
		if !strings.Contains(res.Notes, "WARNING: 3 gateway replicas without the loadbalancing exporter") {
			t.Errorf("NOTES do not warn about split traces:\n%s", res.Notes)
		}
	})
}

// TestLoadBalancingExample renders the example for distributions built with
// contrib's loadbalancing exporter: the agents route traces by trace id to
// the gateway pods; the loadbalancing exporter is the one component this
// distribution lacks.
func TestLoadBalancingExample(t *testing.T) {
	res, o := render(t, []string{"gateway-loadbalancing.yaml"}, nil)
	agent := collectorConfig(t, o.ConfigMaps[agentName])
	checkComponents(t, agent, distributionComponents(t), "load_balancing")
	equal(t, "traces exporters", strs(t, at(t, agent, "service", "pipelines", "traces", "exporters")), []string{"load_balancing"})
	equal(t, "metrics exporters", strs(t, at(t, agent, "service", "pipelines", "metrics", "exporters")), []string{"otlp_grpc"})
	equal(t, "routing_key", at(t, agent, "exporters", "load_balancing", "routing_key"), any("traceID"))
	equal(t, "resolver", at(t, agent, "exporters", "load_balancing", "resolver", "dns", "hostname"),
		any(fmt.Sprintf("%s.%s.svc.cluster.local", gatewayName, helmrender.Namespace)))
	equal(t, "replicas", o.Deployments[gatewayName].Spec.Replicas, ptr(int32(3)))
	if strings.Contains(res.Notes, "WARNING") {
		t.Errorf("NOTES warn although the agents balance by trace id:\n%s", res.Notes)
	}
}

func container(t *testing.T, pod corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container, got %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
	}
	return pod.Containers[0]
}

func checkNarrowSecurity(t *testing.T, c corev1.Container, caps []corev1.Capability) {
	t.Helper()
	equal(t, "securityContext", c.SecurityContext, &corev1.SecurityContext{
		Privileged:               ptr(false),
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: caps},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		ReadOnlyRootFilesystem:   ptr(true),
		RunAsUser:                ptr(int64(0)),
		RunAsGroup:               ptr(int64(0)),
		RunAsNonRoot:             ptr(false),
	})
}

// mounts describes each mount with the volume behind it, sorted by path; a
// volume no mount uses fails the test.
func mounts(pod corev1.PodSpec, c corev1.Container) []string {
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	var out []string
	used := map[string]bool{}
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		src := "missing volume " + m.Name
		switch {
		case !ok:
		case v.HostPath != nil:
			typ := ""
			if v.HostPath.Type != nil {
				typ = string(*v.HostPath.Type)
			}
			src = fmt.Sprintf("hostPath %s %s", v.HostPath.Path, typ)
		case v.ConfigMap != nil:
			src = "configMap " + v.ConfigMap.Name
		default:
			src = "volume " + m.Name
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		used[m.Name] = true
		out = append(out, fmt.Sprintf("%s <- %s (%s)", m.MountPath, src, mode))
	}
	for name := range vols {
		if !used[name] {
			out = append(out, "unused volume "+name)
		}
	}
	sort.Strings(out)
	return out
}

// checkProbes: both probes GET the health_check extension's path on the port
// its endpoint binds.
func checkProbes(t *testing.T, c corev1.Container, cfg map[string]any) {
	t.Helper()
	endpoint := strings.ReplaceAll(at(t, cfg, "extensions", "health_check", "endpoint").(string), "${env:POD_IP}", "10.0.0.1")
	_, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		t.Fatalf("health_check endpoint: %v", err)
	}
	path := at(t, cfg, "extensions", "health_check", "path").(string)
	if !contains(strs(t, at(t, cfg, "service", "extensions")), "health_check") {
		t.Error("health_check is not in service.extensions")
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET, got %+v", name, p)
			continue
		}
		equal(t, name+" path", p.HTTPGet.Path, path)
		equal(t, name+" port", strconv.Itoa(int(containerPort(t, c, p.HTTPGet.Port))), port)
	}
}

func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("no container port named %q", p.StrVal)
	return 0
}

func checkServicePorts(t *testing.T, svc *corev1.Service, c corev1.Container) {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		equal(t, svc.Name+" port "+p.Name, containerPort(t, c, p.TargetPort), p.Port)
	}
}

func env(t *testing.T, c corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no environment variable %s", name)
	return corev1.EnvVar{}
}

// checkMemory: memory_limiter and GOMEMLIMIT are the given percentages of
// limits.memory, in whole MiB rounded down, and memory_limiter comes first
// in every pipeline.
func checkMemory(t *testing.T, c corev1.Container, cfg map[string]any, limitPct, spikePct, goPct int64) {
	t.Helper()
	limit := c.Resources.Limits.Memory()
	if limit.IsZero() {
		t.Fatal("no limits.memory")
	}
	mib := limit.Value() / (1 << 20)
	equal(t, "limit_mib", num(t, at(t, cfg, "processors", "memory_limiter", "limit_mib")), mib*limitPct/100)
	equal(t, "spike_limit_mib", num(t, at(t, cfg, "processors", "memory_limiter", "spike_limit_mib")), mib*spikePct/100)
	equal(t, "GOMEMLIMIT", env(t, c, "GOMEMLIMIT").Value, fmt.Sprintf("%dMiB", mib*goPct/100))
	for name, p := range at(t, cfg, "service", "pipelines").(map[string]any) {
		procs := strs(t, p.(map[string]any)["processors"])
		if len(procs) == 0 || procs[0] != "memory_limiter" {
			t.Errorf("pipeline %s: memory_limiter must come first, got %v", name, procs)
		}
	}
}

// checkRBAC: the ServiceAccount always; the token, the ClusterRole and its
// binding only with the Kubernetes enrichment.
func checkRBAC(t *testing.T, o *objects, pod corev1.PodSpec, enabled bool) {
	t.Helper()
	sa := o.ServiceAccounts[agentName]
	if sa == nil {
		t.Fatalf("no ServiceAccount %s", agentName)
	}
	equal(t, "serviceAccountName", pod.ServiceAccountName, agentName)
	equal(t, "ServiceAccount automount", sa.AutomountServiceAccountToken, ptr(false))
	equal(t, "pod automount", pod.AutomountServiceAccountToken, ptr(enabled))
	if !enabled {
		equal(t, "ClusterRoles", len(o.ClusterRoles), 0)
		equal(t, "ClusterRoleBindings", len(o.ClusterRoleBindings), 0)
		return
	}
	read := []string{"get", "list", "watch"}
	equal(t, "ClusterRole rules", o.ClusterRoles[agentName].Rules, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: read},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: read},
	})
	crb := o.ClusterRoleBindings[agentName]
	if crb == nil {
		t.Fatalf("no ClusterRoleBinding %s", agentName)
	}
	equal(t, "roleRef", crb.RoleRef, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: agentName})
	equal(t, "subjects", crb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: agentName, Namespace: helmrender.Namespace}})
}

// checkChecksum: the pod template carries the hash of the configuration, so
// a change of configuration rolls the pods.
func checkChecksum(t *testing.T, annotations map[string]string, cm *corev1.ConfigMap) {
	t.Helper()
	sum := sha256.Sum256([]byte(strings.TrimSuffix(cm.Data["config.yaml"], "\n")))
	equal(t, "checksum/config", annotations["checksum/config"], hex.EncodeToString(sum[:]))
}

// selectorOf keeps the labels a selector of this chart uses.
func selectorOf(labels map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"} {
		out[k] = labels[k]
	}
	return out
}

// TestConfigChangeRollsPods: another configuration gives another checksum.
func TestConfigChangeRollsPods(t *testing.T) {
	_, a := render(t, nil, nil)
	_, b := render(t, nil, map[string]any{"agent": map[string]any{"ebpf": map[string]any{"discovery": map[string]any{"open_ports": "8080"}}}})
	ca := a.DaemonSets[agentName].Spec.Template.Annotations["checksum/config"]
	cb := b.DaemonSets[agentName].Spec.Template.Annotations["checksum/config"]
	if ca == cb {
		t.Errorf("the checksum did not change with the configuration: %s", ca)
	}
}

// TestManifestsUpToDate: the committed plain manifests are what the chart
// renders now.
func TestManifestsUpToDate(t *testing.T) {
	for _, target := range helmrender.Targets {
		t.Run(filepath.Base(target.File), func(t *testing.T) {
			want, err := target.Render(".")
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(target.File)
			if err != nil {
				t.Fatalf("%v; generate it with `go -C deploy run ./render`", err)
			}
			if string(got) != string(want) {
				t.Errorf("deploy/%s differs from what the chart renders: run `go -C deploy run ./render` and commit the result (first difference at line %d)",
					target.File, firstDiffLine(string(got), string(want)))
			}
			if _, err := decodeAll(got); err != nil {
				t.Errorf("deploy/%s: %v", target.File, err)
			}
		})
	}
}

func firstDiffLine(a, b string) int {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range la {
		if i >= len(lb) || la[i] != lb[i] {
			return i + 1
		}
	}
	return len(la) + 1
}

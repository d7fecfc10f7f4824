package deploy_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/extension/zpagesextension"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
)

// factories are the v0.161.0 components the chart configures, besides the
// ebpf receiver (whose settings receiverSettings reads from its source).
var factories = map[string][]component.Factory{
	"receivers":  {otlpreceiver.NewFactory()},
	"processors": {memorylimiterprocessor.NewFactory(), batchprocessor.NewFactory(), tailsamplingprocessor.NewFactory()},
	"exporters":  {otlpexporter.NewFactory(), debugexporter.NewFactory()},
	"extensions": {healthcheckextension.NewFactory(), pprofextension.NewFactory(), zpagesextension.NewFactory()},
}

// checkWithFactories decodes every component's settings into the config
// type of its factory, the way the collector does at start: an unknown key,
// a value of the wrong type or one its Validate refuses fails the test.
// ${env:POD_IP} is replaced by an address first, as the collector would.
// Components of the types in skip are left alone.
func checkWithFactories(t *testing.T, cfg map[string]any, skip ...string) {
	t.Helper()
	checked := 0
	for kind, list := range factories {
		byType := map[string]component.Factory{}
		for _, f := range list {
			byType[f.Type().String()] = f
		}
		section, _ := cfg[kind].(map[string]any)
		for _, id := range keys(section) {
			typ, _, _ := strings.Cut(id, "/")
			if typ == "ebpf" || contains(skip, typ) {
				continue
			}
			f, ok := byType[typ]
			if !ok {
				t.Errorf("%s.%s: no factory in this test for %q; add it to factories", kind, id, typ)
				continue
			}
			if err := decodeComponent(f, section[id]); err != nil {
				t.Errorf("%s.%s: %v", kind, id, err)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Error("no component checked")
	}
}

func decodeComponent(f component.Factory, raw any) error {
	settings, ok := expandEnv(raw).(map[string]any)
	if raw == nil {
		settings, ok = map[string]any{}, true
	}
	if !ok {
		return fmt.Errorf("settings are %T, not a map", raw)
	}
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(settings).Unmarshal(cfg); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if err := confmap.Validate(cfg); err != nil {
		return fmt.Errorf("validating: %w", err)
	}
	return nil
}

// expandEnv copies v with ${env:POD_IP} replaced in every string.
func expandEnv(v any) any {
	switch v := v.(type) {
	case string:
		return strings.ReplaceAll(v, "${env:POD_IP}", "10.1.2.3")
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = expandEnv(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = expandEnv(e)
		}
		return out
	default:
		return v
	}
}

// TestFactoriesRefuseMistakes makes sure checkWithFactories would catch a
// misspelt or invalid setting.
func TestFactoriesRefuseMistakes(t *testing.T) {
	cases := map[string]struct {
		f    component.Factory
		raw  map[string]any
		want string
	}{
		"unknown key": {memorylimiterprocessor.NewFactory(), map[string]any{"check_interval": "1s", "limit_mb": 100}, "limit_mb"},
		"invalid":     {memorylimiterprocessor.NewFactory(), map[string]any{"check_interval": "1s", "limit_mib": 100, "spike_limit_mib": 200}, "spike"},
		"bad policy": {tailsamplingprocessor.NewFactory(), map[string]any{"policies": []any{
			map[string]any{"name": "x", "type": "latency", "latency": map[string]any{"threshold": 5}}}}, "threshold"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := decodeComponent(c.f, c.raw)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error about %q", err, c.want)
			}
		})
	}
}

// TestEveryConfigDecodes runs checkWithFactories over every configuration
// the chart and the operator resource produce.
func TestEveryConfigDecodes(t *testing.T) {
	type rendering struct {
		examples  []string
		overrides map[string]any
		skip      []string
	}
	all := map[string]rendering{
		"defaults": {},
		"every option": {overrides: map[string]any{
			"diagnostics": map[string]any{"enabled": true},
			"backend": map[string]any{"otlp": map[string]any{"endpoint": "backend.example:4317", "compression": "zstd",
				"headers": map[string]any{"authorization": "Bearer x"}, "tls": map[string]any{"insecure": false}}},
			"agent": map[string]any{"hostProc": map[string]any{"enabled": true}},
		}},
		"gateway":               {examples: []string{"gateway.yaml"}},
		"gateway, every option": {examples: []string{"gateway.yaml"}, overrides: map[string]any{"diagnostics": map[string]any{"enabled": true}, "gateway": map[string]any{"tailSampling": map[string]any{"probabilisticPercentage": 0.5}}}},
		"loadbalancing":         {examples: []string{"gateway-loadbalancing.yaml"}, skip: []string{"load_balancing"}},
	}
	names := keys(all)
	sort.Strings(names)
	for _, name := range names {
		r := all[name]
		t.Run(name, func(t *testing.T) {
			_, o := render(t, r.examples, r.overrides)
			for _, cm := range keys(o.ConfigMaps) {
				t.Run(cm, func(t *testing.T) { checkWithFactories(t, collectorConfig(t, o.ConfigMaps[cm]), r.skip...) })
			}
		})
	}
	t.Run("operator", func(t *testing.T) {
		col, _ := readOperatorFile(t)
		checkWithFactories(t, col.Spec.Config)
	})
}

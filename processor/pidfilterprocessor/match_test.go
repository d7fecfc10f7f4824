package pidfilterprocessor

import (
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

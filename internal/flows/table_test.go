package flows

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

type testOwner struct{ name string }

func (o *testOwner) Fill(attrs pcommon.Map) { attrs.PutStr("service.name", o.name) }

func flow(owner Owner, src, dst string) Flow {
	return Flow{Owner: owner, Interface: "eth0", Proto: protoTCP,
		Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
}

func TestTableCumulativeSums(t *testing.T) {
	t0 := time.Unix(1000, 0)
	web := &testOwner{"web"}
	tb := NewTable(10, time.Minute)
	tb.Add(flow(web, "10.0.0.1:8080", "10.0.0.2:0"), 100, 1, t0)
	tb.Add(flow(web, "10.0.0.1:8080", "10.0.0.2:0"), 50, 2, t0.Add(time.Second))
	tb.Add(flow(nil, "10.0.0.3:0", "[fd00::1]:53"), 7, 1, t0.Add(time.Second))

	md := tb.Collect("scope", func(m pcommon.Map) { m.PutStr("host.name", "node") }, t0.Add(2*time.Second))
	require.Equal(t, 2, md.ResourceMetrics().Len())
	byService := map[string]pmetric.ResourceMetrics{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		name, ok := rm.Resource().Attributes().Get("service.name")
		if !ok {
			name, _ = rm.Resource().Attributes().Get("host.name")
		}
		byService[name.Str()] = rm
	}
	ms := byService["web"].ScopeMetrics().At(0).Metrics()
	require.Equal(t, 2, ms.Len())
	assert.Equal(t, "scope", byService["web"].ScopeMetrics().At(0).Scope().Name())
	bytes, packets := ms.At(0), ms.At(1)
	assert.Equal(t, MetricBytes, bytes.Name())
	assert.Equal(t, "By", bytes.Unit())
	assert.True(t, bytes.Sum().IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, bytes.Sum().AggregationTemporality())
	dp := bytes.Sum().DataPoints().At(0)
	assert.Equal(t, int64(150), dp.IntValue())
	assert.Equal(t, int64(3), packets.Sum().DataPoints().At(0).IntValue())
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), dp.StartTimestamp())
	assert.Equal(t, map[string]any{"network.interface.name": "eth0", "network.io.direction": "receive",
		"network.transport": "tcp", "network.type": "ipv4", "source.address": "10.0.0.1", "source.port": int64(8080),
		"destination.address": "10.0.0.2"}, dp.Attributes().AsRaw(), "a dropped port is left out")

	node := byService["node"].ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
	assert.Equal(t, "ipv4", node.Attributes().AsRaw()["network.type"], "by the source's family")
	assert.Equal(t, int64(53), node.Attributes().AsRaw()["destination.port"])
}

func TestTableOverflowAndExpiry(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tb := NewTable(2, 10*time.Second)
	tb.Add(flow(nil, "10.0.0.1:1", "10.0.0.2:80"), 1, 1, t0)
	tb.Add(flow(nil, "10.0.0.1:2", "10.0.0.2:80"), 1, 1, t0)
	tb.Add(flow(nil, "10.0.0.1:3", "10.0.0.2:80"), 10, 1, t0)
	tb.Add(flow(nil, "10.0.0.1:4", "10.0.0.2:80"), 100, 1, t0.Add(5*time.Second))
	tb.Add(flow(nil, "10.0.0.1:1", "10.0.0.2:80"), 1, 1, t0.Add(5*time.Second))
	assert.Equal(t, 3, tb.Len(), "two flows and an overflow series")
	assert.Equal(t, uint64(2), tb.Overflowed())
	over := Flow{Interface: "eth0", Overflow: true}
	assert.Equal(t, uint64(110), tb.series[over].bytes, "what overflowed is summed, not lost")

	md := tb.Collect("s", func(pcommon.Map) {}, t0.Add(6*time.Second))
	var overflowPoint pcommon.Map
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		if _, ok := dps.At(i).Attributes().Get("otel.metric.overflow"); ok {
			overflowPoint = dps.At(i).Attributes()
		}
	}
	assert.Equal(t, map[string]any{"network.interface.name": "eth0", "network.io.direction": "receive",
		"otel.metric.overflow": true}, overflowPoint.AsRaw())

	tb.Expire(t0.Add(12 * time.Second))
	assert.Equal(t, 2, tb.Len(), "the flow last seen at t0 is forgotten")
	tb.Add(flow(nil, "10.0.0.1:2", "10.0.0.2:80"), 1, 1, t0.Add(12*time.Second))
	assert.Equal(t, 3, tb.Len(), "room again")
	assert.Equal(t, uint64(2), tb.Overflowed())
}

type fakeSide struct{ listening map[netip.AddrPort]bool }

func (f fakeSide) Listening(ep netip.AddrPort, _ uint8, _ uint64) bool { return f.listening[ep] }
func (f fakeSide) Ephemeral(port uint16) bool                          { return port >= 32768 && port <= 60999 }

func TestPortModes(t *testing.T) {
	ap := netip.MustParseAddrPort
	side := fakeSide{map[netip.AddrPort]bool{ap("10.0.0.2:40000"): true}}
	tests := []struct {
		mode             PortMode
		src, dst         string
		wantSrc, wantDst string
		why              string
	}{
		{PortsListening, "10.0.0.1:50000", "10.0.0.2:40000", "10.0.0.1:0", "10.0.0.2:40000", "a listener in the ephemeral range is still the listener"},
		{PortsListening, "10.0.0.2:40000", "10.0.0.1:50000", "10.0.0.2:40000", "10.0.0.1:0", "its responses"},
		{PortsListening, "10.9.0.1:45000", "10.9.0.2:443", "10.9.0.1:0", "10.9.0.2:443", "other hosts: the ephemeral side"},
		{PortsListening, "10.9.0.2:443", "10.9.0.1:45000", "10.9.0.2:443", "10.9.0.1:0", "other hosts, the other way"},
		{PortsListening, "10.9.0.1:45000", "10.9.0.2:46000", "10.9.0.1:45000", "10.9.0.2:46000", "both ephemeral: cannot tell, both kept"},
		{PortsListening, "10.9.0.1:53", "10.9.0.2:53", "10.9.0.1:53", "10.9.0.2:53", "neither ephemeral: both kept"},
		{PortsNone, "10.0.0.1:50000", "10.0.0.2:40000", "10.0.0.1:0", "10.0.0.2:0", "address pairs"},
		{PortsAll, "10.0.0.1:50000", "10.0.0.2:40000", "10.0.0.1:50000", "10.0.0.2:40000", "every port"},
	}
	for _, tt := range tests {
		src, dst := tt.mode.reduce(ap(tt.src), ap(tt.dst), protoTCP, 0, side)
		assert.Equal(t, ap(tt.wantSrc), src, tt.why)
		assert.Equal(t, ap(tt.wantDst), dst, tt.why)
	}
	assert.Error(t, PortMode("some").Validate())
	assert.NoError(t, PortsNone.Validate())
}

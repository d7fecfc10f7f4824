package flows

import (
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Owner is the resource flows are reported under: a process on this node,
// as the receiver describes it. The same process must always be the same
// Owner (a comparable value, such as a pointer).
type Owner interface {
	Fill(attrs pcommon.Map)
}

// Flow is one flow as the metrics report it: ports the cardinality choice
// dropped are 0.
type Flow struct {
	Owner     Owner // nil: the node's
	Interface string
	Transmit  bool // the interface sent it (else received)
	Proto     uint8
	Src, Dst  netip.AddrPort
	// Overflow: the flows that came when the table was full, summed per
	// interface and direction; the addresses and ports are zero.
	Overflow bool
}

// series is a flow's cumulative counts.
type series struct {
	bytes, packets uint64
	start, last    time.Time
}

// Table holds the cumulative counts of at most max flows. A flow beyond
// goes to the overflow series of its owner, interface and direction, and
// is counted in Overflowed: the sums stay whole, only the detail goes.
type Table struct {
	max        int
	idle       time.Duration
	series     map[Flow]*series
	flows      int    // series that are not overflow series
	overflowed uint64 // observations sent to an overflow series
}

// NewTable returns a table of at most max flows, which forgets a flow not
// seen for idle.
func NewTable(max int, idle time.Duration) *Table {
	return &Table{max: max, idle: idle, series: map[Flow]*series{}}
}

// Add adds counts to flow f.
func (t *Table) Add(f Flow, bytes, packets uint64, now time.Time) {
	s, ok := t.series[f]
	if !ok {
		if t.flows >= t.max && !f.Overflow {
			t.overflowed++
			f = Flow{Owner: f.Owner, Interface: f.Interface, Transmit: f.Transmit, Overflow: true}
			s, ok = t.series[f]
		}
		if !ok {
			s = &series{start: now}
			t.series[f] = s // overflow series are not limited: a few per owner and interface
			if !f.Overflow {
				t.flows++
			}
		}
	}
	s.bytes += bytes
	s.packets += packets
	s.last = now
}

// Len is how many series the table holds.
func (t *Table) Len() int { return len(t.series) }

// Overflowed counts the observations that went to overflow series.
func (t *Table) Overflowed() uint64 { return t.overflowed }

// Expire forgets the flows not seen for the table's idle time: a flow seen
// again starts over, with a new start time.
func (t *Table) Expire(now time.Time) {
	for f, s := range t.series {
		if now.Sub(s.last) >= t.idle {
			delete(t.series, f)
			if !f.Overflow {
				t.flows--
			}
		}
	}
}

// Metric names and attributes (semantic conventions v1.44).
const (
	MetricBytes   = "network.flow.bytes"
	MetricPackets = "network.flow.packets"

	attrSrcAddr   = "source.address"
	attrSrcPort   = "source.port"
	attrDstAddr   = "destination.address"
	attrDstPort   = "destination.port"
	attrTransport = "network.transport"
	attrType      = "network.type"
	attrDirection = "network.io.direction"
	attrInterface = "network.interface.name"
	attrOverflow  = "otel.metric.overflow"
)

// Collect builds the metrics of every flow: one resource per owner,
// node filling the resource of flows no process owns.
func (t *Table) Collect(scope string, node func(pcommon.Map), now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	type pair struct{ bytes, packets pmetric.NumberDataPointSlice }
	byOwner := map[Owner]pair{}
	ts := pcommon.NewTimestampFromTime(now)
	for f, s := range t.series {
		p, ok := byOwner[f.Owner]
		if !ok {
			rm := md.ResourceMetrics().AppendEmpty()
			if f.Owner != nil {
				f.Owner.Fill(rm.Resource().Attributes())
			} else {
				node(rm.Resource().Attributes())
			}
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(scope)
			p = pair{newSum(sm, MetricBytes, "By", "Bytes of the flow's packets, as the interface saw them."),
				newSum(sm, MetricPackets, "{packet}", "Packets of the flow.")}
			byOwner[f.Owner] = p
		}
		start := pcommon.NewTimestampFromTime(s.start)
		fillPoint(p.bytes.AppendEmpty(), f, s.bytes, start, ts)
		fillPoint(p.packets.AppendEmpty(), f, s.packets, start, ts)
	}
	return md
}

func newSum(sm pmetric.ScopeMetrics, name, unit, desc string) pmetric.NumberDataPointSlice {
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription(desc)
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return sum.DataPoints()
}

func fillPoint(dp pmetric.NumberDataPoint, f Flow, v uint64, start, ts pcommon.Timestamp) {
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(int64(v))
	attrs := dp.Attributes()
	attrs.PutStr(attrInterface, f.Interface)
	attrs.PutStr(attrDirection, direction(f.Transmit))
	if f.Overflow {
		attrs.PutBool(attrOverflow, true)
		return
	}
	attrs.PutStr(attrTransport, transport(f.Proto))
	attrs.PutStr(attrType, netType(f.Src.Addr()))
	attrs.PutStr(attrSrcAddr, f.Src.Addr().String())
	if f.Src.Port() != 0 {
		attrs.PutInt(attrSrcPort, int64(f.Src.Port()))
	}
	attrs.PutStr(attrDstAddr, f.Dst.Addr().String())
	if f.Dst.Port() != 0 {
		attrs.PutInt(attrDstPort, int64(f.Dst.Port()))
	}
}

func direction(transmit bool) string {
	if transmit {
		return "transmit"
	}
	return "receive"
}

func transport(proto uint8) string {
	if proto == protoUDP {
		return "udp"
	}
	return "tcp"
}

func netType(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

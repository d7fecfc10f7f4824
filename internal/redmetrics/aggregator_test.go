package redmetrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// proc is a Resource: a process by pid.
type proc struct{ pid int64 }

func (p *proc) Fill(m pcommon.Map) { m.PutInt("process.pid", p.pid) }

var durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// requests is a family of two instruments whose series are keyed by a
// method (Str[0]) and a status (Int[0]).
var requests = &Family{
	Instruments: []Instrument{
		{Name: "test.request.duration", Unit: "s", Description: "Durations.", Bounds: durationBounds},
		{Name: "test.response.size", Unit: "By", Description: "Sizes.", Bounds: []float64{0, 100, 1000}},
	},
	Attributes: func(k *Key, m pcommon.Map) {
		m.PutStr("method", k.Str[0])
		m.PutInt("status", k.Int[0])
	},
}

// calls is a family of one instrument.
var calls = &Family{
	Instruments: []Instrument{{Name: "test.call.duration", Unit: "s", Bounds: durationBounds}},
	Attributes:  func(k *Key, m pcommon.Map) { m.PutStr("op", k.Str[0]) },
}

func key(f *Family, s string, i int64) Key {
	k := Key{Family: f}
	k.Str[0], k.Int[0] = s, i
	return k
}

func metricNamed(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		if ms.At(i).Name() == name {
			return ms.At(i)
		}
	}
	t.Fatalf("no metric %s", name)
	return pmetric.Metric{}
}

func TestCollectCumulativeHistograms(t *testing.T) {
	a := New(100)
	p := &proc{1}
	k := key(requests, "GET", 200)
	a.Record(p, k, Observation{0.003, 50}, 100)
	a.Record(p, k, Observation{0.2, 5000}, 200)
	a.Record(p, k, Observation{0.005, 0}, 300) // on a bound: (0, 0.005]
	a.Record(p, key(calls, "x", 0), Observation{1}, 300)

	md := a.Collect("scope", 400)
	require.Equal(t, 1, md.ResourceMetrics().Len())
	require.Equal(t, 3, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().Len(), "one metric per instrument of each family seen")
	dur := metricNamed(t, md, "test.request.duration")
	assert.Equal(t, "s", dur.Unit())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, dur.Histogram().AggregationTemporality())
	dp := dur.Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(3), dp.Count())
	assert.InDelta(t, 0.208, dp.Sum(), 1e-9)
	assert.Equal(t, pcommon.Timestamp(100), dp.StartTimestamp())
	assert.Equal(t, pcommon.Timestamp(400), dp.Timestamp())
	want := make([]uint64, len(durationBounds)+1)
	want[0], want[6] = 2, 1 // 0.003 and 0.005 in (−inf, 0.005]; 0.2 in (0.1, 0.25]
	assert.Equal(t, want, dp.BucketCounts().AsRaw())
	assert.Equal(t, map[string]any{"method": "GET", "status": int64(200)}, dp.Attributes().AsRaw())

	size := metricNamed(t, md, "test.response.size").Histogram().DataPoints().At(0)
	assert.Equal(t, []uint64{1, 1, 0, 1}, size.BucketCounts().AsRaw())

	// Cumulative: the next collection still counts everything.
	a.Record(p, k, Observation{1}, 500)
	dp = metricNamed(t, a.Collect("scope", 600), "test.request.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(4), dp.Count())
	assert.Equal(t, pcommon.Timestamp(100), dp.StartTimestamp())
}

// A pid reused by another process is another Resource: its series start
// anew, under its own resource, and the dead one's go after one last
// collection.
func TestForgetAndPidReuse(t *testing.T) {
	a := New(100)
	dead, reused := &proc{7}, &proc{7}
	a.Record(dead, key(requests, "GET", 404), Observation{0.01}, 1)
	a.Forget(dead)
	a.Record(reused, key(requests, "GET", 404), Observation{0.01}, 2)
	md := a.Collect("scope", 3)
	require.Equal(t, 2, md.ResourceMetrics().Len(), "the dead process's last collection and the new one's")
	md = a.Collect("scope", 4)
	require.Equal(t, 1, md.ResourceMetrics().Len(), "a forgotten process is emitted once more, then dropped")
	assert.Equal(t, pcommon.Timestamp(2), metricNamed(t, md, "test.request.duration").Histogram().DataPoints().At(0).StartTimestamp())
	assert.Equal(t, 1, a.Series())
}

func TestSeriesLimit(t *testing.T) {
	a := New(2)
	for i := 0; i < 5; i++ {
		a.Record(&proc{1}, key(requests, "GET", int64(200+i)), Observation{}, 1)
	}
	assert.Equal(t, uint64(3), a.Overflow())
	assert.Equal(t, 2, a.Series())
}

// A zero now starts a new series at the current time, and does not move
// the start of a series already started.
func TestRecordZeroNowIsTheClock(t *testing.T) {
	a := New(10)
	p, k := &proc{1}, key(requests, "GET", 200)
	before := pcommon.NewTimestampFromTime(time.Now())
	a.Record(p, k, Observation{0.1}, 0)
	after := pcommon.NewTimestampFromTime(time.Now())
	a.Record(p, k, Observation{0.1}, 0)
	dp := metricNamed(t, a.Collect("scope", after), "test.request.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), dp.Count())
	assert.GreaterOrEqual(t, dp.StartTimestamp(), before)
	assert.LessOrEqual(t, dp.StartTimestamp(), after)
}

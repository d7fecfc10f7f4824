package redmetrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func fillPid(pid int64) func(pcommon.Map) {
	return func(m pcommon.Map) { m.PutInt("process.pid", pid) }
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
	k := Key{Server: true, Method: "GET", Status: 200, Route: "/users/*", Version: "1.1", ServerPort: 8080}
	a.Record(1, fillPid(1), k, Observation{Duration: 0.003, ResponseBody: 50}, 100)
	a.Record(1, fillPid(1), k, Observation{Duration: 0.2, ResponseBody: 5000}, 200)
	a.Record(1, fillPid(1), k, Observation{Duration: 0.005}, 300) // on a bound: (0, 0.005]

	md := a.Collect("scope", 400)
	require.Equal(t, 1, md.ResourceMetrics().Len())
	dur := metricNamed(t, md, "http.server.request.duration")
	assert.Equal(t, "s", dur.Unit())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, dur.Histogram().AggregationTemporality())
	dp := dur.Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(3), dp.Count())
	assert.InDelta(t, 0.208, dp.Sum(), 1e-9)
	assert.Equal(t, pcommon.Timestamp(100), dp.StartTimestamp())
	assert.Equal(t, pcommon.Timestamp(400), dp.Timestamp())
	want := make([]uint64, len(DurationBounds)+1)
	want[0], want[6] = 2, 1 // 0.003 and 0.005 in (−inf, 0.005]; 0.2 in (0.1, 0.25]
	assert.Equal(t, want, dp.BucketCounts().AsRaw())
	assert.Equal(t, map[string]any{
		"http.request.method": "GET", "http.response.status_code": int64(200), "http.route": "/users/*",
		"server.port": int64(8080), "network.protocol.version": "1.1", "url.scheme": "http",
	}, dp.Attributes().AsRaw())

	body := metricNamed(t, md, "http.server.response.body.size").Histogram().DataPoints().At(0)
	assert.Equal(t, []uint64{1, 1, 0, 1, 0, 0, 0, 0}, body.BucketCounts().AsRaw())

	// Cumulative: the next collection still counts everything.
	a.Record(1, fillPid(1), k, Observation{Duration: 1}, 500)
	dp = metricNamed(t, a.Collect("scope", 600), "http.server.request.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(4), dp.Count())
	assert.Equal(t, pcommon.Timestamp(100), dp.StartTimestamp())
}

func TestClientErrorsAndForget(t *testing.T) {
	a := New(100)
	a.Record(7, fillPid(7), Key{Method: "GET", Status: 404, Version: "1.1", ServerAddr: "10.0.0.1", ServerPort: 80}, Observation{Duration: 0.01}, 1)
	a.Record(7, fillPid(7), Key{Method: "GET", Status: 0, Version: "1.1", ServerAddr: "10.0.0.1", ServerPort: 80}, Observation{Duration: 0.01}, 1)
	a.Forget(7)
	md := a.Collect("scope", 2)
	dps := metricNamed(t, md, "http.client.request.duration").Histogram().DataPoints()
	require.Equal(t, 2, dps.Len())
	errTypes := map[string]bool{}
	for i := 0; i < dps.Len(); i++ {
		v, _ := dps.At(i).Attributes().Get("error.type")
		errTypes[v.Str()] = true
	}
	assert.Equal(t, map[string]bool{"404": true, "no_response": true}, errTypes)
	assert.Equal(t, 0, a.Collect("scope", 3).ResourceMetrics().Len(), "a forgotten process is emitted once more, then dropped")
}

func TestSeriesLimit(t *testing.T) {
	a := New(2)
	for i := 0; i < 5; i++ {
		a.Record(1, fillPid(1), Key{Server: true, Method: "GET", Status: 200 + i}, Observation{}, 1)
	}
	assert.Equal(t, uint64(3), a.Overflow())
	assert.Equal(t, 2, metricNamed(t, a.Collect("s", 2), "http.server.request.duration").Histogram().DataPoints().Len())
}

// A zero now starts a new series at the current time, and does not move
// the start of a series already started.
func TestRecordZeroNowIsTheClock(t *testing.T) {
	a := New(10)
	k := Key{Server: true, Method: "GET", Status: 200, Route: "/", Version: "1.1", ServerPort: 80}
	before := pcommon.NewTimestampFromTime(time.Now())
	a.Record(1, fillPid(1), k, Observation{Duration: 0.1}, 0)
	after := pcommon.NewTimestampFromTime(time.Now())
	a.Record(1, fillPid(1), k, Observation{Duration: 0.1}, 0)
	dp := metricNamed(t, a.Collect("scope", after), "http.server.request.duration").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), dp.Count())
	assert.GreaterOrEqual(t, dp.StartTimestamp(), before)
	assert.LessOrEqual(t, dp.StartTimestamp(), after)
}

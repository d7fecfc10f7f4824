// Package redmetrics aggregates HTTP exchanges into the RED histograms of the
// semantic conventions (request duration, request and response body sizes),
// cumulative from the moment a series is first seen.
package redmetrics // import "github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// DurationBounds are the semantic conventions' advised buckets, in seconds.
var DurationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// SizeBounds are buckets for body sizes, in bytes.
var SizeBounds = []float64{0, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000}

// Key holds the low-cardinality attributes of one series.
type Key struct {
	Server     bool // server side (else client)
	Method     string
	Status     int // 0: no response
	Route      string
	Version    string
	ServerAddr string // client side only: the peer; servers leave it empty
	ServerPort int
}

// Observation is one exchange, as far as metrics care.
type Observation struct {
	Duration     float64 // seconds
	RequestBody  int64
	ResponseBody int64
}

type histogram struct {
	counts []uint64
	count  uint64
	sum    float64
	min    float64
	max    float64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) add(bounds []float64, v float64) {
	i := sort.SearchFloat64s(bounds, v) // first bound >= v: buckets are (prev, bound]
	h.counts[i]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
}

type series struct {
	start    pcommon.Timestamp
	duration *histogram
	reqBody  *histogram
	respBody *histogram
}

// process is the set of series of one process, with what describes it.
type process struct {
	fill   func(pcommon.Map)
	series map[Key]*series
	gone   bool
}

// Aggregator collects observations; safe for one writer and one collector
// at a time.
type Aggregator struct {
	mu        sync.Mutex
	procs     map[uint32]*process
	maxSeries int
	nSeries   int
	overflow  uint64
}

// New returns an Aggregator that keeps at most maxSeries series; what does
// not fit is counted by Overflow.
func New(maxSeries int) *Aggregator {
	return &Aggregator{procs: map[uint32]*process{}, maxSeries: maxSeries}
}

// Record adds one observation for process pid. fill describes the process's
// resource; it is kept from the first call for pid. now starts the series
// when the observation is its first; zero stands for the current time,
// read only then, since reading the clock for every request costs more
// than the rest of recording it.
func (a *Aggregator) Record(pid uint32, fill func(pcommon.Map), k Key, o Observation, now pcommon.Timestamp) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.procs[pid]
	if p == nil {
		p = &process{fill: fill, series: map[Key]*series{}}
		a.procs[pid] = p
	}
	s := p.series[k]
	if s == nil {
		if a.nSeries >= a.maxSeries {
			a.overflow++
			return
		}
		if now == 0 {
			now = pcommon.NewTimestampFromTime(time.Now())
		}
		s = &series{start: now, duration: newHistogram(DurationBounds),
			reqBody: newHistogram(SizeBounds), respBody: newHistogram(SizeBounds)}
		p.series[k] = s
		a.nSeries++
	}
	s.duration.add(DurationBounds, o.Duration)
	s.reqBody.add(SizeBounds, float64(o.RequestBody))
	s.respBody.add(SizeBounds, float64(o.ResponseBody))
}

// Forget marks process pid as gone: its series are emitted once more by the
// next Collect, then dropped.
func (a *Aggregator) Forget(pid uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.procs[pid]; p != nil {
		p.gone = true
	}
}

// Overflow counts observations dropped because maxSeries was reached.
func (a *Aggregator) Overflow() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.overflow
}

// Collect returns every series as cumulative histograms at time now.
func (a *Aggregator) Collect(scope string, now pcommon.Timestamp) pmetric.Metrics {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := pmetric.NewMetrics()
	for pid, p := range a.procs {
		if len(p.series) > 0 {
			rm := md.ResourceMetrics().AppendEmpty()
			p.fill(rm.Resource().Attributes())
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(scope)
			appendProcess(sm.Metrics(), p, now)
		}
		if p.gone {
			a.nSeries -= len(p.series)
			delete(a.procs, pid)
		}
	}
	return md
}

type metricDef struct {
	name, unit, desc string
	server           bool
	pick             func(*series) *histogram
	bounds           []float64
}

var metricDefs = []metricDef{
	{"http.server.request.duration", "s", "Duration of HTTP server requests.", true, func(s *series) *histogram { return s.duration }, DurationBounds},
	{"http.server.request.body.size", "By", "Size of HTTP server request bodies.", true, func(s *series) *histogram { return s.reqBody }, SizeBounds},
	{"http.server.response.body.size", "By", "Size of HTTP server response bodies.", true, func(s *series) *histogram { return s.respBody }, SizeBounds},
	{"http.client.request.duration", "s", "Duration of HTTP client requests.", false, func(s *series) *histogram { return s.duration }, DurationBounds},
	{"http.client.request.body.size", "By", "Size of HTTP client request bodies.", false, func(s *series) *histogram { return s.reqBody }, SizeBounds},
	{"http.client.response.body.size", "By", "Size of HTTP client response bodies.", false, func(s *series) *histogram { return s.respBody }, SizeBounds},
}

func appendProcess(ms pmetric.MetricSlice, p *process, now pcommon.Timestamp) {
	for _, def := range metricDefs {
		var dps pmetric.HistogramDataPointSlice
		started := false
		for k, s := range p.series {
			if k.Server != def.server {
				continue
			}
			if !started {
				started = true
				m := ms.AppendEmpty()
				m.SetName(def.name)
				m.SetUnit(def.unit)
				m.SetDescription(def.desc)
				h := m.SetEmptyHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				dps = h.DataPoints()
			}
			appendPoint(dps.AppendEmpty(), k, s.start, now, def.pick(s), def.bounds)
		}
	}
}

func appendPoint(dp pmetric.HistogramDataPoint, k Key, start, now pcommon.Timestamp, h *histogram, bounds []float64) {
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(now)
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	dp.SetMin(h.min)
	dp.SetMax(h.max)
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(h.counts)
	attrs := dp.Attributes()
	attrs.PutStr("http.request.method", k.Method)
	switch {
	case k.Status == 0:
		attrs.PutStr("error.type", "no_response")
	case k.Status >= 500, !k.Server && k.Status >= 400:
		attrs.PutInt("http.response.status_code", int64(k.Status))
		attrs.PutStr("error.type", strconv.Itoa(k.Status))
	default:
		attrs.PutInt("http.response.status_code", int64(k.Status))
	}
	if k.Server {
		attrs.PutStr("http.route", k.Route)
	} else {
		attrs.PutStr("server.address", k.ServerAddr)
	}
	attrs.PutInt("server.port", int64(k.ServerPort))
	attrs.PutStr("network.protocol.version", k.Version)
	attrs.PutStr("url.scheme", "http")
}

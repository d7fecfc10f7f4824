// Package redmetrics aggregates exchanges into the RED histograms of the
// semantic conventions (rate, errors, duration; and sizes where a protocol
// has them), cumulative from the moment a series is first seen.
//
// It knows no protocol: a Family names the instruments that count the same
// exchanges and writes a series' attributes from its Key; protocols define
// their families (internal/semconv) and say, per exchange, which series it
// counts in.
package redmetrics // import "github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"

import (
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// MaxInstruments is the most instruments a family may have.
const MaxInstruments = 3

// Instrument is one histogram of a family.
type Instrument struct {
	Name, Unit, Description string
	Bounds                  []float64 // explicit bucket bounds, ascending
}

// Family is the set of instruments that count the same exchanges, e.g.
// the HTTP server's request duration and body sizes.
type Family struct {
	Instruments []Instrument // at most MaxInstruments
	// Attributes writes the attributes of the series of k.
	Attributes func(k *Key, attrs pcommon.Map)
}

// Key identifies one series: its family, and attribute values whose
// meaning the family defines. It is comparable and made of values the
// caller already holds, so looking a series up allocates nothing.
type Key struct {
	Family *Family
	Str    [8]string
	Int    [2]int64
}

// Observation is what one exchange adds to each instrument of its family,
// in the family's order.
type Observation [MaxInstruments]float64

// Resource is what the series of one process are reported under. The
// Aggregator keys processes by it: a process that gets a dead one's pid is
// another Resource, so its series never take the dead one's identity.
type Resource interface {
	Fill(attrs pcommon.Map)
}

type histogram struct {
	counts []uint64
	count  uint64
	sum    float64
	min    float64
	max    float64
}

func newHistogram(bounds []float64) histogram {
	return histogram{counts: make([]uint64, len(bounds)+1)}
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
	start pcommon.Timestamp
	hists [MaxInstruments]histogram
}

// process is the set of series of one process.
type process struct {
	series map[Key]*series
	gone   bool
}

// Aggregator collects observations; safe for concurrent use.
type Aggregator struct {
	mu        sync.Mutex
	procs     map[Resource]*process
	maxSeries int
	nSeries   int
	overflow  uint64
}

// New returns an Aggregator that keeps at most maxSeries series; what does
// not fit is counted by Overflow.
func New(maxSeries int) *Aggregator {
	return &Aggregator{procs: map[Resource]*process{}, maxSeries: maxSeries}
}

// Record adds one observation to the series k of process res. now starts
// the series when the observation is its first; zero stands for the
// current time, read only then, since reading the clock for every request
// costs more than the rest of recording it.
func (a *Aggregator) Record(res Resource, k Key, o Observation, now pcommon.Timestamp) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.procs[res]
	if p == nil {
		p = &process{series: map[Key]*series{}}
		a.procs[res] = p
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
		s = &series{start: now}
		for i, in := range k.Family.Instruments {
			s.hists[i] = newHistogram(in.Bounds)
		}
		p.series[k] = s
		a.nSeries++
	}
	for i, in := range k.Family.Instruments {
		s.hists[i].add(in.Bounds, o[i])
	}
}

// Forget marks process res as gone: its series are emitted once more by
// the next Collect, then dropped.
func (a *Aggregator) Forget(res Resource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.procs[res]; p != nil {
		p.gone = true
	}
}

// Overflow counts observations dropped because maxSeries was reached.
func (a *Aggregator) Overflow() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.overflow
}

// Series counts the series kept.
func (a *Aggregator) Series() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nSeries
}

// Collect returns every series as cumulative histograms at time now.
func (a *Aggregator) Collect(scope string, now pcommon.Timestamp) pmetric.Metrics {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := pmetric.NewMetrics()
	for res, p := range a.procs {
		if len(p.series) > 0 {
			rm := md.ResourceMetrics().AppendEmpty()
			res.Fill(rm.Resource().Attributes())
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(scope)
			appendProcess(sm.Metrics(), p, now)
		}
		if p.gone {
			a.nSeries -= len(p.series)
			delete(a.procs, res)
		}
	}
	return md
}

// appendProcess writes one metric per instrument of each family the
// process has series of, with a point per series.
func appendProcess(ms pmetric.MetricSlice, p *process, now pcommon.Timestamp) {
	byFamily := map[*Family][]Key{}
	var order []*Family
	for k := range p.series {
		if _, ok := byFamily[k.Family]; !ok {
			order = append(order, k.Family)
		}
		byFamily[k.Family] = append(byFamily[k.Family], k)
	}
	sort.Slice(order, func(i, j int) bool {
		return order[i].Instruments[0].Name < order[j].Instruments[0].Name
	})
	for _, f := range order {
		for i, in := range f.Instruments {
			m := ms.AppendEmpty()
			m.SetName(in.Name)
			m.SetUnit(in.Unit)
			m.SetDescription(in.Description)
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps := h.DataPoints()
			for _, k := range byFamily[f] {
				s := p.series[k]
				appendPoint(dps.AppendEmpty(), &k, s.start, now, &s.hists[i], in.Bounds)
			}
		}
	}
}

func appendPoint(dp pmetric.HistogramDataPoint, k *Key, start, now pcommon.Timestamp, h *histogram, bounds []float64) {
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(now)
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	dp.SetMin(h.min)
	dp.SetMax(h.max)
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(h.counts)
	k.Family.Attributes(k, dp.Attributes())
}

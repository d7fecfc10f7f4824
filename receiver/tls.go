package receiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/conntrack"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/uprobes"
)

// tlsTracing is the receiver's view of TLS plaintext: the probes loaded in
// the kernel (bpf.TLS) and the manager that attaches them to the files of
// watched processes (uprobes.Manager). Nil with tls: false, or where the
// kernel cannot load them.
type tlsTracing struct {
	kernel *bpf.TLS
	files  *uprobes.Manager
}

// rescanAfter bounds how often a process whose TLS shows no plaintext is
// looked at again (it may have loaded its TLS library since).
const rescanAfter = 5 * time.Second

var (
	tlsSentOpenSSL   = attr("library", "openssl", "outcome", "sent")
	tlsSentGo        = attr("library", "go", "outcome", "sent")
	tlsUntied        = attr("library", "openssl", "outcome", "not_tied")
	tlsNotTCP        = attr("library", "go", "outcome", "not_tied")
	tracingPlaintext = attr("tracing", "plaintext")
	probeSSLEntry    = attr("probe", "ssl_entry")
	probeSSLReturn   = attr("probe", "ssl_return")
	probeGoEntry     = attr("probe", "go_entry")
	probeGoReturn    = attr("probe", "go_return")
	tlsNoRoom        = attr("probes", "tls", "reason", "no_room")
	noPlaintext      = attr("protocol", "tls", "reason", "no_plaintext")
)

// startTLS loads the TLS probes, with tls: true. TLS that cannot be traced
// here never stops the receiver: TLS connections are then traced at the
// socket level only, and the log says so.
func (r *Receiver) startTLS() {
	if !r.opts.TLS {
		return
	}
	k, err := r.tracer.LoadTLS()
	if err != nil {
		r.logger().Warn("tls: TLS plaintext cannot be traced on this kernel; TLS connections are traced at the socket level only", zap.Error(err))
		return
	}
	m := uprobes.New(k, uprobes.Options{ProcRoot: r.opts.ProcRoot, Logger: r.logger()})
	m.Start()
	r.tls.Store(&tlsTracing{kernel: k, files: m})
}

// stopTLS takes every probe off and frees the programs.
func (r *Receiver) stopTLS() error {
	t := r.tls.Swap(nil)
	if t == nil {
		return nil
	}
	return errors.Join(t.files.Close(), t.kernel.Close())
}

// tlsAdopted has the TLS libraries of a newly watched process probed.
func (r *Receiver) tlsAdopted(p *process) {
	if t := r.tls.Load(); t != nil {
		t.files.Add(p.Pid, p.StartTime)
	}
}

// tlsEnded releases the probes of a process that ended.
func (r *Receiver) tlsEnded(p *process) {
	if t := r.tls.Load(); t != nil {
		t.files.Remove(p.Pid, p.StartTime)
	}
}

// encrypted is told of a connection whose bytes are TLS and whose
// plaintext was not seen: its process may have loaded its TLS library
// after it was examined (Python imports ssl when it needs it), so it is
// examined again, at most every rescanAfter.
func (l *eventLoop) encrypted(c *conntrack.Conn) {
	r := l.r
	t := r.tls.Load()
	if t == nil {
		return
	}
	p := r.procs.get(c.Key.Pid)
	if p == nil {
		return
	}
	now := time.Now()
	if last, ok := l.rescanned[c.Key.Pid]; ok && now.Sub(last) < rescanAfter {
		return
	}
	if len(l.rescanned) >= 4096 {
		clear(l.rescanned)
	}
	l.rescanned[c.Key.Pid] = now
	t.files.Add(p.Pid, p.StartTime)
}

// publishTLS counts the connections whose bytes were TLS and whose
// plaintext never came: their process's TLS library is not probed.
func (l *eventLoop) publishTLS(ctx context.Context, st conntrack.Stats) {
	if st.Encrypted > l.encryptedPublished {
		l.r.tb.ReceiverEbpfParseFailures.Add(ctx, int64(st.Encrypted-l.encryptedPublished), noPlaintext)
		l.encryptedPublished = st.Encrypted
	}
}

// registerTLSGauges reports the TLS probes' counters and how the watched
// processes' TLS is traced.
func (r *Receiver) registerTLSGauges() error {
	tb := r.tb
	reasons := map[string]metric.MeasurementOption{}
	errs := []error{
		tb.RegisterReceiverEbpfTLSEventsCallback(func(_ context.Context, o metric.Int64Observer) error {
			c, err := r.tlsCounters()
			if err != nil || c == nil {
				return err
			}
			o.Observe(int64(c.SentOpenSSL), tlsSentOpenSSL)
			o.Observe(int64(c.SentGo), tlsSentGo)
			o.Observe(int64(c.Untied), tlsUntied)
			o.Observe(int64(c.NotTCP), tlsNotTCP)
			return nil
		}),
		tb.RegisterReceiverEbpfUprobeHitsCallback(func(_ context.Context, o metric.Int64Observer) error {
			c, err := r.tlsCounters()
			if err != nil || c == nil {
				return err
			}
			o.Observe(int64(c.SSLEntry), probeSSLEntry)
			o.Observe(int64(c.SSLReturn), probeSSLReturn)
			o.Observe(int64(c.GoEntry), probeGoEntry)
			o.Observe(int64(c.GoReturn), probeGoReturn)
			return nil
		}),
		tb.RegisterReceiverEbpfUprobeMissesCallback(func(_ context.Context, o metric.Int64Observer) error {
			c, err := r.tlsCounters()
			if err != nil || c == nil {
				return err
			}
			o.Observe(int64(c.NoRoom), tlsNoRoom)
			return nil
		}),
		tb.RegisterReceiverEbpfTLSProcessesCallback(func(_ context.Context, o metric.Int64Observer) error {
			t := r.tls.Load()
			if t == nil {
				return nil
			}
			counts := t.files.Counts()
			o.Observe(int64(counts.Probed), tracingPlaintext)
			for reason, n := range counts.SocketOnly {
				a, ok := reasons[reason]
				if !ok {
					a = attr("tracing", "socket_only", "reason", reason)
					reasons[reason] = a
				}
				o.Observe(int64(n), a)
			}
			return nil
		}),
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("registering TLS self-telemetry: %w", err)
		}
	}
	return nil
}

// tlsCounters reads the TLS probes' counters; nil without TLS tracing.
func (r *Receiver) tlsCounters() (*bpf.TLSCounters, error) {
	t := r.tls.Load()
	if t == nil {
		return nil, nil
	}
	c, err := t.kernel.Counters()
	if err != nil {
		return nil, err
	}
	return &c, nil
}

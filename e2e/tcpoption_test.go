package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http2"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

func init() {
	peerRoles["flows-h2-server"] = func() { runTCPOptionServer(os.Getenv("E2E_ADDR")) }
	peerRoles["flows-h2-client"] = func() { runTCPOptionClient(os.Getenv("E2E_TARGET"), envInt("E2E_REQUESTS")) }
}

// runTCPOptionServer serves HTTP/2 with prior knowledge (h2c) on every
// connection it accepts; each answer names the length and digest of the
// request body it read, and carries a body of its own made from the path.
func runTCPOptionServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Body", fmt.Sprintf("len=%d sha=%x", len(body), sha256.Sum256(body)))
		writeBody(w, responseSize(r.URL.Path), 7)
	})
	srv := &http2.Server{}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
	}
}

// responseSize is the size of the answer to path: a few KB, varying.
func responseSize(path string) int {
	return 1000 + len(path)*97
}

// runTCPOptionClient says READY and waits for a line before it connects;
// then it sends n requests one after the other on one HTTP/2 connection
// (odd ones POSTs with a body), then n at once, checks every byte both
// ways, and says "H2 <name> ok" for each, then DONE.
func runTCPOptionClient(target string, n int) {
	fmt.Println("READY waiting")
	bufio.NewReader(os.Stdin).ReadString('\n')
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	send := func(name string, size int) {
		path := "/tcp/" + name
		var body bytes.Buffer
		writeBody(&body, size, uint64(size))
		sum := sha256.Sum256(body.Bytes())
		method := http.MethodGet
		if size > 0 {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, "http://"+target+path, bytes.NewReader(body.Bytes()))
		resp, err := client.Do(req)
		if err != nil {
			say("H2 %s error %v", name, err)
			return
		}
		defer resp.Body.Close()
		want := fmt.Sprintf("len=%d sha=%x", size, sum)
		if got := resp.Header.Get("X-Body"); got != want {
			say("H2 %s error the server read %q, not %q", name, got, want)
			return
		}
		if err := readBody(resp.Body, responseSize(path), 7); err != nil {
			say("H2 %s error response: %v", name, err)
			return
		}
		say("H2 %s ok", name)
	}
	for i := 0; i < n; i++ {
		size := 0
		if i%2 == 1 {
			size = i*1000 + 7
		}
		send("s"+strconv.Itoa(i), size)
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); send("p"+strconv.Itoa(i), 0) }()
	}
	wg.Wait()
	say("DONE")
}

// startReceiverNamed is startReceiver for a receiver of its own id: two
// of them in one test are two nodes' collectors, which share nothing.
func startReceiverNamed(t *testing.T, name string, configure func(*ebpfreceiver.Config)) *harness {
	t.Helper()
	requireRoot(t)
	f := ebpfreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*ebpfreceiver.Config)
	cfg.Metrics.Interval = 200 * time.Millisecond
	cfg.Discovery.PollInterval = 100 * time.Millisecond
	configure(cfg)
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zap.InfoLevel)
	tel := componenttestTelemetry(t)
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, name)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	h := &harness{traces: new(consumertest.TracesSink), metrics: new(consumertest.MetricsSink), logs: logs, tel: tel}
	tr, err := f.CreateTraces(context.Background(), set, cfg, h.traces)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, h.metrics)
	require.NoError(t, err)
	h.comps = []component.Component{tr, mr}
	for _, c := range h.comps {
		require.NoError(t, c.Start(context.Background(), nil))
	}
	t.Cleanup(func() { h.stop(t) })
	return h
}

// A watched HTTP/2 client calls a watched HTTP/2 server on another host,
// each watched by its own node's receiver (two receivers that share
// nothing, so no span is linked on the node); with context_propagation:
// tcp every request carries its client span's context in a TCP header
// option, and the server span is its child. Every byte of every request
// and response arrives as it was sent.
func TestNetworkTCPOptionPropagation(t *testing.T) {
	n := newFlowsNet(t)
	srv := startReady(t, n.exec(n.nsB, "E2E_ROLE=flows-h2-server", "E2E_ADDR="+n.addrB.String()+":18472"))
	const requests = 20
	cmd := n.exec(n.nsA, "E2E_ROLE=flows-h2-client", "E2E_TARGET="+srv.addr, "E2E_REQUESTS="+strconv.Itoa(requests))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	client := startReady(t, cmd)
	server := startReceiverNamed(t, "server-node", func(c *ebpfreceiver.Config) {
		c.ContextPropagation = "tcp"
		c.Discovery.Pids = []int{srv.pid()}
	})
	caller := startReceiverNamed(t, "client-node", func(c *ebpfreceiver.Config) {
		c.ContextPropagation = "tcp"
		c.Discovery.Pids = []int{client.pid()}
	})
	server.waitInstrumented(t, srv.pid())
	caller.waitInstrumented(t, client.pid())

	fmt.Fprintln(stdin)
	ok := 0
	for {
		line := client.readLine(t)
		if line == "DONE" {
			break
		}
		require.True(t, strings.HasSuffix(line, " ok"), "client said %q", line)
		ok++
	}
	require.Equal(t, 2*requests, ok, "every byte of every request and response arrived")

	clientSpans := byLastSegment(caller.waitSpans(t, client.pid(), ptrace.SpanKindClient, 2*requests))
	serverSpans := byLastSegment(server.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 2*requests))
	children := 0
	for name, c := range clientSpans {
		s, found := serverSpans[name]
		require.True(t, found, "a server span for %s", name)
		if s.TraceID() == c.TraceID() && s.ParentSpanID() == c.SpanID() {
			children++
		} else {
			require.True(t, s.ParentSpanID().IsEmpty(), "%s: a server span not carried is a root, never another's child", name)
		}
		if strings.HasPrefix(name, "s") {
			require.Equal(t, c.TraceID(), s.TraceID(), "%s: sequential requests are all carried", name)
			require.Equal(t, c.SpanID(), s.ParentSpanID(), "%s", name)
		}
	}
	t.Logf("PROPAGATION tcp option, HTTP/2 across two hosts: %d/%d sequential requests children of their client span; %d/%d concurrent ones",
		requests, requests, children-requests, requests)
	sent := func(outcome string) int64 {
		return caller.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", outcome)
	}
	got := func(outcome string) int64 {
		return server.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", outcome)
	}
	require.Eventually(t, func() bool { return got("matched") == int64(children) }, 5*time.Second, 50*time.Millisecond,
		"matched %d", got("matched"))
	t.Logf("PROPAGATION tcp option counters: client node sent %d (no_room %d, misplaced %d, busy %d); server node received %d, matched %d",
		sent("sent"), sent("no_room"), sent("misplaced"), sent("busy"), got("received"), got("matched"))
	assert.Equal(t, sent("sent"), got("received"), "every option sent arrived")
}

// h1BodyStep sizes the POST bodies of the HTTP/1.1 client.
const h1BodyStep = 5000

// retransmitted is the TCP segments namespace ns resent.
func (n flowsNet) retransmitted(t *testing.T, ns string) int64 {
	return n.snmp(t, ns, "Tcp", "RetransSegs")
}

// snmp is one counter of namespace ns's /proc/net/snmp, such as Tcp
// RetransSegs or Ip FragFails.
func (n flowsNet) snmp(t *testing.T, ns, group, name string) int64 {
	t.Helper()
	var snmp []byte
	n.in(t, ns, func() (err error) {
		snmp, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	lines := strings.Split(string(snmp), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], group+":") || !strings.HasPrefix(lines[i+1], group+":") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, field := range names {
			if field == name && j < len(values) {
				v, err := strconv.ParseInt(values[j], 10, 64)
				require.NoError(t, err)
				return v
			}
		}
	}
	t.Fatalf("no %s %s in /proc/net/snmp", group, name)
	return 0
}

// linkDrops is what interface ifname in namespace ns dropped or failed,
// both ways: a veth drops a packet longer than its peer's MTU allows.
func (n flowsNet) linkDrops(t *testing.T, ns, ifname string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname).Output()
	require.NoError(t, err, "ip -s link show %s in %s", ifname, ns)
	var links []struct {
		Stats struct {
			RX, TX struct {
				Errors  int64 `json:"errors"`
				Dropped int64 `json:"dropped"`
			}
		} `json:"stats64"`
	}
	require.NoError(t, json.Unmarshal(out, &links), "%s", out)
	require.Len(t, links, 1, "%s", out)
	s := links[0].Stats
	return s.RX.Errors + s.RX.Dropped + s.TX.Errors + s.TX.Dropped
}

// outgrown is the packets of either host that outgrew the path: IP
// refused to send them (too long to go unfragmented) or the veth dropped
// them. A resent segment alone does not say this: under load, TCP's tail
// loss probe resends a segment that was never lost.
func (n flowsNet) outgrown(t *testing.T) int64 {
	return n.snmp(t, n.nsA, "Ip", "FragFails") + n.snmp(t, n.nsB, "Ip", "FragFails") +
		n.linkDrops(t, n.nsA, n.ifA) + n.linkDrops(t, n.nsB, n.ifB)
}

func init() {
	peerRoles["flows-h1-client"] = func() { runTCPOptionH1Client(os.Getenv("E2E_URL"), envInt("E2E_REQUESTS")) }
}

// runTCPOptionH1Client says READY and waits for a line; then it sends n
// requests one after the other on one keep-alive HTTP/1.1 connection (odd
// ones POSTs with an i*h1BodyStep-byte body: many full-sized segments
// behind the one that carries the option) to the echo server and prints
// what it answered: "ECHO <i> <answer>", then DONE.
func runTCPOptionH1Client(url string, n int) {
	fmt.Println("READY waiting")
	bufio.NewReader(os.Stdin).ReadString('\n')
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
	for i := 0; i < n; i++ {
		u := strings.ReplaceAll(url, "{i}", strconv.Itoa(i))
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if i%2 == 1 {
			req, _ = http.NewRequest(http.MethodPost, u, bytes.NewReader(make([]byte, i*h1BodyStep)))
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Printf("ECHO %d error: %v\n", i, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("ECHO %d %s\n", i, b)
	}
	fmt.Println("DONE")
}

// HTTP/1.1 on one keep-alive connection between two hosts, each watched by
// its own receiver: with tcp, every request carries its context in a TCP
// option and none gets a header; with headers,tcp the first request
// carries a traceparent header and the later ones the option. Each server
// span is its client span's child; every body arrives whole.
func TestNetworkTCPOptionHTTP1(t *testing.T) {
	for _, mode := range []string{"tcp", "headers,tcp"} {
		t.Run(mode, func(t *testing.T) {
			n := newFlowsNet(t)
			srv := startReady(t, n.exec(n.nsB, "E2E_ROLE=echo", "E2E_ADDR="+n.addrB.String()+":18473"))
			const requests = 30
			cmd := n.exec(n.nsA, "E2E_ROLE=flows-h1-client", "E2E_URL=http://"+srv.addr+"/h1/{i}",
				"E2E_REQUESTS="+strconv.Itoa(requests))
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			client := startReady(t, cmd)
			server := startReceiverNamed(t, "server-node", func(c *ebpfreceiver.Config) {
				c.ContextPropagation = mode
				c.Discovery.Pids = []int{srv.pid()}
			})
			caller := startReceiverNamed(t, "client-node", func(c *ebpfreceiver.Config) {
				c.ContextPropagation = mode
				c.Discovery.Pids = []int{client.pid()}
			})
			server.waitInstrumented(t, srv.pid())
			caller.waitInstrumented(t, client.pid())
			fmt.Fprintln(stdin)
			answers := map[string]echo{}
			for line := client.readLine(t); line != "DONE"; line = client.readLine(t) {
				f := strings.SplitN(line, " ", 3)
				require.True(t, len(f) == 3 && f[0] == "ECHO", "client said %q", line)
				answers[f[1]] = parseEcho(t, f[2])
			}
			clientSpans := byLastSegment(caller.waitSpans(t, client.pid(), ptrace.SpanKindClient, requests))
			serverSpans := byLastSegment(server.waitSpans(t, srv.pid(), ptrace.SpanKindServer, requests))
			for i := 0; i < requests; i++ {
				key := strconv.Itoa(i)
				c, s, a := clientSpans[key], serverSpans[key], answers[key]
				if i%2 == 1 {
					require.Equal(t, i*h1BodyStep, a.length, "request %d: the body arrived whole", i)
				}
				if i == 0 && mode == "headers,tcp" {
					require.Equal(t, spanContext(c), a.traceparent, "the first request carries the header")
				} else {
					require.Empty(t, a.traceparent, "request %d: no byte added", i)
				}
				if c.TraceID() != s.TraceID() || c.SpanID() != s.ParentSpanID() {
					t.Errorf("request %d: client %s/%s, server %s parent %s span %s (tp %q)", i, c.TraceID(), c.SpanID(),
						s.TraceID(), s.ParentSpanID(), s.SpanID(), a.traceparent)
				}
			}
			for _, o := range []string{"sent", "no_room", "misplaced", "busy", "received", "matched"} {
				t.Logf("%s: client node %d, server node %d", o,
					caller.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", o),
					server.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", o))
			}
			assert.Zero(t, n.outgrown(t), "no packet outgrew the path with the option (the MSS made room)")
			t.Logf("segments resent by the client host: %d", n.retransmitted(t, n.nsA))
			matched := server.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", "matched")
			t.Logf("PROPAGATION tcp option, HTTP/1.1 keep-alive across two hosts (%s): %d/%d server spans children of their client span, %d through the option",
				mode, requests, requests, matched)
		})
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

func init() {
	peerRoles["tls-tcpopt-client"] = func() { runTLSOptionClient(os.Getenv("E2E_TARGET"), os.Getenv("E2E_CA"), envInt("E2E_REQUESTS")) }
}

// runTLSOptionClient says READY and waits for a line; then it sends n
// requests one after the other over one HTTP/1.1 connection (/h1/I, odd
// ones POSTs with an I*h1BodyStep-byte body) and n over one HTTP/2
// connection (/h2/I) to https://target, trusting the certificate in ca,
// and prints "ECHO <path> <status> <body>" for each, then DONE.
func runTLSOptionClient(target, ca string, n int) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	fmt.Println("READY waiting")
	bufio.NewReader(os.Stdin).ReadString('\n')
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 1,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}} // no HTTP/2
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 1, ForceAttemptHTTP2: true}
	for _, v := range []struct {
		version string
		rt      http.RoundTripper
	}{{"h1", h1}, {"h2", h2}} {
		client := &http.Client{Transport: v.rt}
		for i := 0; i < n; i++ {
			path := fmt.Sprintf("/%s/%d", v.version, i)
			req, _ := http.NewRequest(http.MethodGet, "https://"+target+path, nil)
			if i%2 == 1 {
				req, _ = http.NewRequest(http.MethodPost, "https://"+target+path, bytes.NewReader(make([]byte, i*h1BodyStep)))
			}
			resp, err := client.Do(req)
			if err != nil {
				fmt.Printf("ECHO %s error: %v\n", path, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("ECHO %s %d %s %s\n", path, resp.StatusCode, resp.Proto, b)
		}
	}
	fmt.Println("DONE")
}

// tlsOptionCase is a TLS client and server, each on its own host (network
// namespace) and watched by its own node's receiver.
type tlsOptionCase struct {
	server func(t *testing.T, n flowsNet, c certs) *peer
	client func(t *testing.T, n flowsNet, c certs, target string) *exec.Cmd
	// paths the client asks for, in order, and what each answers
	paths   []string
	answers []string
	// children is how many server spans at least are their client
	// span's child. Go's server reads records into a buffer as they come:
	// when a read takes the request's first record together with the one
	// before it (the handshake's last, an HTTP/2 acknowledgement), no read
	// begins where the option's segment did, and the context is left
	// unmatched (counted), its server span a root, never another's child.
	children int
}

// HTTPS between two hosts, each watched by its own node's receiver, with
// context_propagation: tcp: the TLS library's plaintext tells where a
// request begins, its records carry the client span's context in a TCP
// option, and the server span is its child. Go's crypto/tls on both sides
// (HTTP/1.1 and HTTP/2) and OpenSSL on both sides (Python's ssl); every
// request and response arrives whole (TLS would fail on a changed byte).
func TestNetworkTCPOptionTLS(t *testing.T) {
	const requests = 12
	var goPaths, goAnswers, pyPaths, pyAnswers []string
	for _, v := range []string{"h1", "h2"} {
		proto := map[string]string{"h1": "HTTP/1.1", "h2": "HTTP/2.0"}[v]
		for i := 0; i < requests; i++ {
			goPaths = append(goPaths, fmt.Sprintf("/%s/%d", v, i))
			goAnswers = append(goAnswers, "200 "+proto+" "+map[bool]string{true: "ok", false: "hello"}[i%2 == 1])
		}
	}
	for i := 0; i < requests; i++ {
		pyPaths = append(pyPaths, fmt.Sprintf("/py/%d", i))
		pyAnswers = append(pyAnswers, "200 "+map[bool]string{true: "ok", false: "hello"}[i%2 == 1])
	}
	cases := map[string]tlsOptionCase{
		"go crypto/tls": {
			server: func(t *testing.T, n flowsNet, c certs) *peer {
				return startReady(t, n.exec(n.nsB, "E2E_ROLE=tls-go-server", "E2E_ADDR="+n.addrB.String()+":18473",
					"E2E_CERT="+c.cert, "E2E_KEY="+c.key))
			},
			client: func(t *testing.T, n flowsNet, c certs, target string) *exec.Cmd {
				return n.exec(n.nsA, "E2E_ROLE=tls-tcpopt-client", "E2E_TARGET="+target, "E2E_CA="+c.cert,
					"E2E_REQUESTS="+strconv.Itoa(requests))
			},
			paths: goPaths, answers: goAnswers, children: len(goPaths) - 4, // measured 21-23 of 24
		},
		"openssl": {
			server: func(t *testing.T, n flowsNet, c certs) *peer {
				return startReady(t, exec.Command("ip", "netns", "exec", n.nsB, "/usr/bin/python3", tlsFixture("server.py"),
					c.cert, c.key, "18474", n.addrB.String()))
			},
			client: func(t *testing.T, n flowsNet, c certs, target string) *exec.Cmd {
				host, port, _ := strings.Cut(target, ":")
				return exec.Command("ip", "netns", "exec", n.nsA, "/usr/bin/python3", tlsFixture("keepalive_client.py"),
					c.cert, host, port, strconv.Itoa(requests))
			},
			paths: pyPaths, answers: pyAnswers, children: len(pyPaths),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { tc.run(t) })
	}
}

func (tc tlsOptionCase) run(t *testing.T) {
	n := newFlowsNet(t)
	c := newCerts(t, net.IP(n.addrB.AsSlice()))
	srv := tc.server(t, n, c)
	cmd := tc.client(t, n, c, srv.addr)
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
	server.waitTLS(t, srv.pid())
	caller.waitTLS(t, client.pid())

	fmt.Fprintln(stdin)
	answers := map[string]string{}
	for line := client.readLine(t); line != "DONE"; line = client.readLine(t) {
		f := strings.SplitN(line, " ", 3)
		require.True(t, len(f) == 3 && f[0] == "ECHO", "client said %q", line)
		answers[f[1]] = f[2]
	}
	for i, p := range tc.paths {
		require.Equal(t, tc.answers[i], answers[p], "%s: the request and its response arrived whole", p)
	}

	want := len(tc.paths)
	clientSpans := byPath(caller.waitSpans(t, client.pid(), ptrace.SpanKindClient, want))
	serverSpans := byPath(server.waitSpans(t, srv.pid(), ptrace.SpanKindServer, want))
	children := 0
	for _, p := range tc.paths {
		c, s := clientSpans[p], serverSpans[p]
		switch {
		case s.TraceID() == c.TraceID() && s.ParentSpanID() == c.SpanID():
			children++
		case s.ParentSpanID().IsEmpty():
			t.Logf("%s: its context was not matched, a root", p)
		default:
			t.Errorf("%s: server span %s/%s (parent %s) is not the child of client span %s/%s",
				p, s.TraceID(), s.SpanID(), s.ParentSpanID(), c.TraceID(), c.SpanID())
		}
	}
	sent := func(outcome string) int64 {
		return caller.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", outcome)
	}
	got := func(outcome string) int64 {
		return server.selfMetric(t, "otelcol_receiver_ebpf_propagation_tcp_options", "outcome", outcome)
	}
	t.Logf("PROPAGATION tcp option, TLS across two hosts: %d/%d server spans children of their client span; "+
		"client node sent %d (no_room %d, misplaced %d, busy %d), server node received %d, matched %d",
		children, want, sent("sent"), sent("no_room"), sent("misplaced"), sent("busy"), got("received"), got("matched"))
	assert.GreaterOrEqual(t, children, tc.children)
	require.Eventually(t, func() bool { return got("matched") == int64(children) }, 5*time.Second, 50*time.Millisecond,
		"matched %d", got("matched"))
	assert.Equal(t, int64(want), sent("sent")+sent("misplaced")+sent("no_room")+sent("busy"),
		"every request's option was sent or counted as not sent")
	assert.Equal(t, sent("sent"), got("received"), "every option sent arrived")
}

// byPath indexes spans by their request's path.
func byPath(spans []span) map[string]span {
	out := map[string]span{}
	for _, s := range spans {
		p := s.str("url.path")
		if p == "" {
			p = pathOfURL(s.str("url.full"))
		}
		out[p] = s
	}
	return out
}

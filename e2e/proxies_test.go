package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// An HTTP proxy in front of an upstream, both watched: the pid that moves
// the bytes and the address clients call.
type httpProxy struct {
	name  string
	start func(t *testing.T, upstream string) (pid int, addr string)
}

var httpProxies = []httpProxy{
	{"nginx-buffering", func(t *testing.T, up string) (int, string) { return nginxProxy(t, up, true) }},
	{"nginx-no-buffering", func(t *testing.T, up string) (int, string) { return nginxProxy(t, up, false) }},
	{"haproxy-http", haproxyHTTP},
	{"go-reverseproxy", goReverseProxy},
}

// nginxProxy runs nginx as an HTTP reverse proxy with keep-alive
// connections to upstream, buffering responses or not.
func nginxProxy(t *testing.T, upstream string, buffering bool) (int, string) {
	port := freePort(t)
	dir := t.TempDir()
	onOff := map[bool]string{true: "on", false: "off"}[buffering]
	pid := startNginx(t, fmt.Sprintf(`http {
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    client_max_body_size 64m;
    upstream next { server %[2]s; keepalive 32; }
    server {
        listen 127.0.0.1:%[1]d;
        location / {
            proxy_pass http://next;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering %[4]s;
            proxy_request_buffering %[4]s;
        }
    }
}`, port, upstream, dir, onOff))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	return pid, addr
}

func haproxyHTTP(t *testing.T, upstream string) (int, string) {
	port := freePort(t)
	cfg := fmt.Sprintf(`global
    maxconn 512
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend front
    bind 127.0.0.1:%d
    default_backend back
backend back
    server next %s
`, port, upstream)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	p := startPeer(t, exec.Command("haproxy", "-db", "-f", path))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	return p.pid(), addr
}

func goReverseProxy(t *testing.T, upstream string) (int, string) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=revproxy", "E2E_ADDR=127.0.0.1:0", "E2E_UPSTREAM="+upstream)
	p := startReady(t, cmd)
	return p.pid(), p.addr
}

var bodyHashes sync.Map // [2]uint64{size, seed} -> [32]byte

// bodyHash is the sha256 of the body the upstream makes of size and seed,
// made once.
func bodyHash(size int, seed uint64) [32]byte {
	key := [2]uint64{uint64(size), seed}
	if h, ok := bodyHashes.Load(key); ok {
		return h.([32]byte)
	}
	h := sha256.New()
	writeBody(h, size, seed)
	sum := [32]byte(h.Sum(nil))
	bodyHashes.Store(key, sum)
	return sum
}

// transfer is one request of the matrix and what became of it.
type transfer struct {
	upload bool
	size   int
	seed   uint64
	err    error
	wrong  bool // the body that arrived is not the one sent
	took   time.Duration
}

func (x *transfer) run(client *http.Client, addr string) {
	var body bytes.Buffer
	if x.upload {
		writeBody(&body, x.size, x.seed)
	}
	start := time.Now()
	defer func() { x.took = time.Since(start) }()
	if x.upload {
		resp, err := client.Post("http://"+addr+"/sha", "application/octet-stream", &body)
		if err != nil {
			x.err = err
			return
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		want := bodyHash(x.size, x.seed)
		x.err, x.wrong = err, string(got) != fmt.Sprintf("%x", want[:])
		return
	}
	resp, err := client.Get(fmt.Sprintf("http://%s/body/%d/%d", addr, x.size, x.seed))
	if err != nil {
		x.err = err
		return
	}
	defer resp.Body.Close()
	h := sha256.New()
	_, x.err = io.Copy(h, resp.Body)
	x.wrong = [32]byte(h.Sum(nil)) != bodyHash(x.size, x.seed)
}

// stalled is how long a transfer through a proxy may take before it
// counts as stalled: far above what it takes, far below the client's
// 30 s timeout.
const stalled = 10 * time.Second

// runTransfers sends xs through addr, concurrency at a time, each client
// on keep-alive connections or a connection per request.
func runTransfers(addr string, xs []*transfer, concurrency int, keepAlive bool) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: concurrency, DisableKeepAlives: !keepAlive, DisableCompression: true}}
	work := make(chan *transfer, len(xs))
	for _, x := range xs {
		work <- x
	}
	close(work)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range work {
				x.run(client, addr)
			}
		}()
	}
	wg.Wait()
}

// With propagation on, proxies in front of a watched upstream move every
// body byte for byte, in both directions, on keep-alive connections and
// not, one request at a time and 16 at once: a socket the kernel touched
// for propagation answers reads and ioctls (FIONREAD, which nginx relies
// on) as it would without it.
func TestProxiesMoveBodiesIntactWithPropagation(t *testing.T) {
	sizes := []int{1 << 10, 1 << 20, 10 << 20}
	for _, px := range httpProxies {
		t.Run(px.name, func(t *testing.T) {
			upstream := startGoServer(t)
			pid, addr := px.start(t, upstream.addr)
			h := startReceiver(t, func(c *ebpfreceiver.Config) {
				c.Discovery.Pids = []int{pid, upstream.pid()}
				c.ContextPropagation = "headers"
			})
			h.waitInstrumented(t, pid)
			h.waitInstrumented(t, upstream.pid())
			var all []*transfer
			seed := uint64(0)
			for _, keepAlive := range []bool{true, false} {
				for _, concurrency := range []int{1, 16} {
					var xs []*transfer
					for _, size := range sizes {
						for _, upload := range []bool{false, true} {
							for range max(2, concurrency/2) {
								seed++ // eight bodies of each size: their hashes are made once
								xs = append(xs, &transfer{upload: upload, size: size, seed: seed % 8})
							}
						}
					}
					rand.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
					runTransfers(addr, xs, concurrency, keepAlive)
					all = append(all, xs...)
				}
			}
			failed, wrong, slowest := 0, 0, time.Duration(0)
			for _, x := range all {
				if x.err != nil {
					failed++
					t.Logf("%+v", x)
				}
				if x.wrong {
					wrong++
				}
				slowest = max(slowest, x.took)
			}
			t.Logf("PROXY %s with propagation: %d transfers (1 KB, 1 MB, 10 MB, up and down), %d failed, %d bodies differ, slowest %v",
				px.name, len(all), failed, wrong, slowest)
			require.Zero(t, failed)
			require.Zero(t, wrong)
			// A stall (the FIONREAD bug: nginx waited for bytes it was told
			// were not there) lasts until a timeout; a 10 MB transfer takes
			// 0.2-1.3 s here, longer on a loaded machine. Speed is for make
			// bench, not for this test.
			assert.Less(t, slowest, stalled, "no transfer stalled")
			assert.Positive(t, h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected"),
				"the proxy's connections to the upstream carried traceparents")
		})
	}
}

// 20 000 requests of mixed sizes through nginx with propagation on: none
// fails or comes back short, and the spans count every one of them.
func TestSoakThroughNginxWithPropagation(t *testing.T) {
	upstream := startGoServer(t)
	pid, addr := nginxProxy(t, upstream.addr, true)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{pid, upstream.pid()}
		c.ContextPropagation = "headers"
		c.RingBufferSize = 32 << 20
	})
	h.waitInstrumented(t, pid)
	h.waitInstrumented(t, upstream.pid())
	const n = 20_000
	sizes := []int{0, 100, 1000, 4000, 16 << 10, 64 << 10, 256 << 10}
	xs := make([]*transfer, n)
	for i := range xs {
		xs[i] = &transfer{size: sizes[i%len(sizes)], seed: uint64(i), upload: i%5 == 4}
	}
	runTransfers(addr, xs, 16, true)
	failed, wrong := 0, 0
	for _, x := range xs {
		if x.err != nil {
			failed++
		}
		if x.wrong {
			wrong++
		}
	}
	require.Zero(t, failed, "failed requests")
	require.Zero(t, wrong, "truncated or altered bodies")
	lost := func() int64 { return max(0, h.selfMetric(t, "otelcol_receiver_ebpf_requests_lost", "", "")) }
	for _, p := range []int{pid, upstream.pid()} {
		require.Eventually(t, func() bool { return int64(len(h.spansOf(p, ptrace.SpanKindServer)))+lost() >= n }, 30*time.Second, 100*time.Millisecond)
	}
	t.Logf("SOAK nginx: %d requests, %d nginx server spans, %d upstream server spans, %d requests lost by the kernel, injected %d",
		n, len(h.spansOf(pid, ptrace.SpanKindServer)), len(h.spansOf(upstream.pid(), ptrace.SpanKindServer)), lost(),
		h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected"))
	require.Zero(t, lost(), "a 32 MiB ring buffer keeps up")
	require.Len(t, h.spansOf(pid, ptrace.SpanKindServer), n)
	require.Len(t, h.spansOf(upstream.pid(), ptrace.SpanKindServer), n)
}

// An epoll client (Go's net/http) makes 2 000 requests to a watched server,
// on keep-alive connections and on a connection each: with propagation on
// it sees the same failures as without (none).
func TestEpollClientSameWithPropagation(t *testing.T) {
	srv := startGoServer(t)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	failures := map[string]string{}
	for _, mode := range []string{"none", "headers"} {
		h := startReceiver(t, func(c *ebpfreceiver.Config) {
			c.Discovery.Pids = []int{srv.pid()}
			c.Discovery.OpenPorts = port // the client is selected at connect()
			c.ContextPropagation = mode
		})
		h.waitInstrumented(t, srv.pid())
		for _, close := range []bool{false, true} {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "E2E_ROLE=client", "E2E_URL=http://"+srv.addr+"/epoll/{i}",
				"E2E_REQUESTS=2000", "E2E_CONCURRENCY=8")
			if close {
				cmd.Env = append(cmd.Env, "E2E_CLOSE=1")
			}
			out, err := cmd.Output()
			require.NoError(t, err)
			failures[fmt.Sprintf("%s close=%v", mode, close)] = strings.TrimSpace(string(out))
		}
		t.Logf("EPOLL propagation=%s: %v; injected %d", mode, failures,
			h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected"))
		h.stop(t)
	}
	for k, v := range failures {
		require.Equal(t, "DONE 2000", v, k)
	}
}

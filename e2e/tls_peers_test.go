package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// The peers of the TLS tests: HTTPS servers (Go, nginx, Python, Node.js),
// clients (Go, curl, Python), gRPC over TLS, all with a certificate the
// test makes.

func init() {
	peerRoles["tls-go-server"] = func() { runTLSGoServer(os.Getenv("E2E_ADDR"), os.Getenv("E2E_CERT"), os.Getenv("E2E_KEY")) }
	peerRoles["tls-go-client"] = runTLSGoClient
	peerRoles["tls-hold"] = func() { fmt.Println("READY 0"); io.Copy(io.Discard, os.Stdin) }
	peerRoles["tls-grpc-server"] = func() {
		runTLSGRPCServer(os.Getenv("E2E_ADDR"), os.Getenv("E2E_CERT"), os.Getenv("E2E_KEY"))
	}
	peerRoles["tls-grpc-client"] = func() {
		runTLSGRPCClient(os.Getenv("E2E_TARGET"), os.Getenv("E2E_CA"),
			grpcCalls{unary: envInt("E2E_UNARY"), concurrent: envInt("E2E_CONCURRENT")})
	}
}

// certs is a self-signed certificate for 127.0.0.1 and localhost, made
// for the test, in PEM files.
type certs struct {
	cert, key string // file paths
	pool      *x509.CertPool
}

// newCerts makes a certificate in a directory the test removes, valid
// also for the addresses ips.
func newCerts(t *testing.T, ips ...net.IP) certs {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "otelcol-ebpf e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		IPAddresses: append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...),
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	// World-readable: nginx workers and the postgres account read them.
	dir, err := os.MkdirTemp("", "e2e-tls")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	c := certs{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	require.NoError(t, os.WriteFile(c.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(c.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o644))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	c.pool.AddCert(cert)
	return c
}

// tlsMux is what the HTTPS servers answer: /status/N with N, /big with
// 1 MiB, a POST with "ok" once its body is read, anything else "hello".
func tlsMux() *http.ServeMux {
	mux := http.NewServeMux()
	big := bytes.Repeat([]byte("x"), 1<<20)
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(code)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			w.Write([]byte("ok"))
			return
		}
		w.Write([]byte("hello"))
	})
	return mux
}

// runTLSGoServer is net/http's ServeTLS (what ListenAndServeTLS runs) on
// addr: HTTP/2 for clients that offer it, HTTP/1.1 for the others.
func runTLSGoServer(addr, cert, key string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	srv := &http.Server{Handler: tlsMux()}
	fmt.Println("ERROR", srv.ServeTLS(ln, cert, key))
}

// runTLSGoClient sends E2E_REQUESTS requests to each of the URLs in
// E2E_URLS (space-separated) in turn, over E2E_CONCURRENCY keep-alive
// connections, trusting E2E_CA; HTTP/2 where the server offers it.
// E2E_POST_SIZE makes the requests POSTs with bodies of that size,
// written a buffer at a time. It prints "DONE <responses>".
func runTLSGoClient() {
	pem, err := os.ReadFile(os.Getenv("E2E_CA"))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: envInt("E2E_CONCURRENCY"), DisableCompression: true}
	client := &http.Client{Transport: tr}
	post, _ := strconv.Atoi(os.Getenv("E2E_POST_SIZE"))
	ok := 0
	for _, url := range strings.Fields(os.Getenv("E2E_URLS")) {
		ok += fetchAll(client, url, envInt("E2E_REQUESTS"), envInt("E2E_CONCURRENCY"), post)
	}
	fmt.Println("DONE", ok)
}

// fetchAll sends n requests to url over concurrency connections.
func fetchAll(client *http.Client, url string, n, concurrency, post int) int {
	var mu sync.Mutex
	ok := 0
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for c := 0; c < concurrency; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				var resp *http.Response
				var err error
				if post > 0 {
					// With a length (Python's server reads no chunked
					// body); the transport writes it a buffer at a time.
					req, _ := http.NewRequest(http.MethodPost, url, io.LimitReader(chunks{}, int64(post)))
					req.ContentLength = int64(post)
					resp, err = client.Do(req)
				} else {
					resp, err = client.Get(url)
				}
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok
}

// chunks reads as endless "y"s, 4 KiB at most per Read: a body the client
// writes piece by piece.
type chunks struct{}

func (chunks) Read(p []byte) (int, error) {
	n := min(len(p), 4096)
	for i := range p[:n] {
		p[i] = 'y'
	}
	return n, nil
}

// runTLSGRPCServer serves grpc-go's TestService over TLS.
func runTLSGRPCServer(addr, cert, key string) {
	creds, err := credentials.NewServerTLSFromFile(cert, key)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	s := grpc.NewServer(grpc.Creds(creds))
	testpb.RegisterTestServiceServer(s, grpcService{})
	fmt.Println("READY", ln.Addr().String())
	s.Serve(ln)
}

// runTLSGRPCClient makes the calls of runGRPCClient over TLS.
func runTLSGRPCClient(target, ca string, calls grpcCalls) {
	creds, err := credentials.NewClientTLSFromFile(ca, "")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	defer conn.Close()
	fmt.Println("DONE", grpcWorkload(context.Background(), testpb.NewTestServiceClient(conn), calls))
}

// tlsFixture is the path of a file of testdata/tls.
func tlsFixture(name string) string {
	return filepath.Join("testdata", "tls", name)
}

// startTLSGoServer runs the Go HTTPS server peer.
func startTLSGoServer(t *testing.T, c certs) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=tls-go-server", "E2E_ADDR=127.0.0.1:0", "E2E_CERT="+c.cert, "E2E_KEY="+c.key)
	return startReady(t, cmd)
}

// startPythonTLS runs testdata/tls/server.py with the system's Python.
func startPythonTLS(t *testing.T, c certs) *peer {
	t.Helper()
	return startReady(t, exec.Command("/usr/bin/python3", tlsFixture("server.py"), c.cert, c.key))
}

// startNodeTLS runs testdata/tls/server.js.
func startNodeTLS(t *testing.T, c certs) *peer {
	t.Helper()
	return startReady(t, exec.Command("node", tlsFixture("server.js"), c.cert, c.key))
}

// startNginxTLS runs nginx with TLS on a port of its own and returns its
// worker's pid and address. /big is a file of 1 MiB, which nginx sends in
// many SSL_write calls.
func startNginxTLS(t *testing.T, c certs) (int, string) {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("n"), 1<<20), 0o644))
	pid := startNginx(t, fmt.Sprintf(`http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 10000;
    server {
        listen 127.0.0.1:%[2]d ssl;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        location = /status/404 { return 404; }
        location = /status/503 { return 503; }
        location = /big { default_type application/octet-stream; alias %[1]s/big; }
        location / { return 200 "hello"; }
    }
}`, dir, port, c.cert, c.key))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	return pid, addr
}

// startHolders runs a process that maps the system's libssl and one that
// runs the test binary (Go's crypto/tls), both idle, to be watched: the
// files they map are probed before the short-lived clients that map them
// too start (a client whose library is probed only once it runs misses
// its first requests).
func startHolders(t *testing.T) []int {
	t.Helper()
	// Both wait for their standard input to end, which is when the test
	// does.
	hold := func(cmd *exec.Cmd) int {
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		t.Cleanup(func() { stdin.Close() })
		return startReady(t, cmd).pid()
	}
	goHold := exec.Command(os.Args[0])
	goHold.Env = append(os.Environ(), "E2E_ROLE=tls-hold")
	return []int{hold(exec.Command("/usr/bin/python3", tlsFixture("hold.py"))), hold(goHold)}
}

// waitTLS waits until the receiver traces process pid's TLS plaintext.
func (h *harness) waitTLS(t *testing.T, pid int) {
	t.Helper()
	probed := func() bool {
		for _, e := range h.logs.FilterMessage("tracing TLS plaintext").All() {
			if e.ContextMap()["process.pid"] == int64(pid) {
				return true
			}
		}
		return false
	}
	if assert.Eventually(t, probed, 20*time.Second, 20*time.Millisecond, "pid %d: its TLS was never probed", pid) {
		return
	}
	for _, e := range h.logs.All() {
		if strings.Contains(e.Message, "TLS") || strings.Contains(e.Message, "tls") {
			t.Logf("%s %v", e.Message, e.ContextMap())
		}
	}
	out, _ := exec.Command("ps", "-eLo", "pid,tid,ppid,cmd").CombinedOutput()
	t.Logf("DEBUG ps:\n%s", out)
	t.FailNow()
}

// runCurlTLS fetches the URLs with one curl process (one keep-alive
// connection), trusting ca, and returns its pid.
func runCurlTLS(t *testing.T, ca string, urls []string) int {
	t.Helper()
	var cfg strings.Builder
	for _, u := range urls {
		fmt.Fprintf(&cfg, "url = %q\noutput = /dev/null\n", u)
	}
	path := filepath.Join(t.TempDir(), "curl.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg.String()), 0o644))
	cmd := exec.Command("curl", "-sS", "--cacert", ca, "-K", path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return cmd.Process.Pid
}

// runPythonTLSClient runs testdata/tls/client.py: a connection per request.
func runPythonTLSClient(t *testing.T, ca string, urlsAndCounts ...string) int {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{tlsFixture("client.py"), ca}, urlsAndCounts...)...)
	p := startPeer(t, cmd)
	line := p.readLine(t)
	want := 0
	for i := 1; i < len(urlsAndCounts); i += 2 {
		n, _ := strconv.Atoi(urlsAndCounts[i])
		want += n
	}
	require.Equal(t, fmt.Sprintf("DONE %d", want), line)
	return p.pid()
}

// runGoTLSClient runs the Go client peer to completion; env sets
// E2E_URLS, E2E_REQUESTS, E2E_CONCURRENCY and the options.
func runGoTLSClient(t *testing.T, ca string, want int, env ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "E2E_ROLE=tls-go-client", "E2E_CA="+ca), env...)
	p := startPeer(t, cmd)
	require.Equal(t, fmt.Sprintf("DONE %d", want), p.readLine(t))
	return p.pid()
}

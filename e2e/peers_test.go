package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The test binary doubles as the Go peers: started with E2E_ROLE set, it runs
// a server or a client instead of the tests. The peers must be processes of
// their own: the receiver never watches the process it runs in. Each file
// adds the roles it needs to peerRoles in an init function.
func TestMain(m *testing.M) {
	if role := os.Getenv("E2E_ROLE"); role != "" {
		run, ok := peerRoles[role]
		if !ok {
			fmt.Println("ERROR no role", role)
			os.Exit(2)
		}
		run()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// peerRoles are what the test binary runs as a peer, by E2E_ROLE.
var peerRoles = map[string]func(){
	"server": func() { runServer(os.Getenv("E2E_ADDR")) },
	"client": func() { runClient(os.Getenv("E2E_URL"), envInt("E2E_REQUESTS"), envInt("E2E_CONCURRENCY")) },
	"echo":   func() { runEcho(os.Getenv("E2E_ADDR")) },
	"echo-client": func() {
		runEchoClient(os.Getenv("E2E_URL"), envInt("E2E_REQUESTS"), envInt("E2E_CONCURRENCY"), os.Getenv("E2E_WAIT") != "")
	},
	"revproxy": func() { runReverseProxy(os.Getenv("E2E_ADDR"), os.Getenv("E2E_UPSTREAM")) },
}

func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return n
}

// runServer serves: /status/{code} answers with that code; /chunked answers
// with a chunked body; anything else answers 200 "hello".
func runServer(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 4<<20))
	})
	mux.HandleFunc("GET /body/{size}/{seed}", func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.PathValue("size"))
		seed, _ := strconv.ParseUint(r.PathValue("seed"), 10, 64)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		writeBody(w, size, seed)
	})
	mux.HandleFunc("POST /sha", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		fmt.Fprintf(w, "%x", h.Sum(nil))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	if down := os.Getenv("E2E_DOWNSTREAM"); down != "" {
		// A service that calls another while serving: /front/x calls /back/x,
		// on a connection of its own with E2E_DOWNSTREAM_CLOSE set.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64,
			DisableKeepAlives: os.Getenv("E2E_DOWNSTREAM_CLOSE") != ""}}
		mux.HandleFunc("/front/{id}", func(w http.ResponseWriter, r *http.Request) {
			resp, err := client.Get("http://" + down + "/back/" + r.PathValue("id"))
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			io.Copy(w, resp.Body)
			resp.Body.Close()
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("hello"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	http.Serve(ln, mux)
}

// runClient sends n GET requests to url over `concurrency` keep-alive
// connections and prints how many got a response. "{i}" in url becomes the
// request's number, so every request can be told apart.
func runClient(url string, n, concurrency int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, DisableCompression: true,
		DisableKeepAlives: os.Getenv("E2E_CLOSE") != ""}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	for c := 0; c < concurrency; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				resp, err := client.Get(strings.ReplaceAll(url, "{i}", strconv.Itoa(i)))
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
	fmt.Println("DONE", ok)
	os.Exit(0)
}

// peer is a process the tests started.
type peer struct {
	cmd  *exec.Cmd
	out  *bufio.Reader
	addr string
}

func (p *peer) pid() int { return p.cmd.Process.Pid }

// startGoServer runs the Go server peer on a free loopback port; env adds
// to its environment (E2E_DOWNSTREAM makes it call another service).
func startGoServer(t *testing.T, env ...string) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "E2E_ROLE=server", "E2E_ADDR=127.0.0.1:0"), env...)
	return startReady(t, cmd)
}

// startReady starts a peer that says "READY <addr>" once it listens.
func startReady(t *testing.T, cmd *exec.Cmd) *peer {
	t.Helper()
	p := startPeer(t, cmd)
	line := p.readLine(t)
	require.True(t, strings.HasPrefix(line, "READY "), "%v said %q", cmd.Args, line)
	p.addr = strings.TrimPrefix(line, "READY ")
	return p
}

func startPeer(t *testing.T, cmd *exec.Cmd) *peer {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	// A group of its own, so its children (nginx workers) go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return &peer{cmd: cmd, out: bufio.NewReader(stdout)}
}

func (p *peer) readLine(t *testing.T) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		l, err := p.out.ReadString('\n')
		ch <- result{strings.TrimSpace(l), err}
	}()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r.line
	case <-time.After(20 * time.Second):
		t.Fatalf("peer %v said nothing for 20s", p.cmd.Args)
		return ""
	}
}

// runGoClient runs the Go client peer to completion and returns its pid and
// how many requests got a response.
func runGoClient(t *testing.T, url string, n, concurrency int) (int, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=client", "E2E_URL="+url,
		"E2E_REQUESTS="+strconv.Itoa(n), "E2E_CONCURRENCY="+strconv.Itoa(concurrency))
	p := startPeer(t, cmd)
	line := p.readLine(t)
	require.True(t, strings.HasPrefix(line, "DONE "), "client said %q", line)
	ok, err := strconv.Atoi(strings.TrimPrefix(line, "DONE "))
	require.NoError(t, err)
	return p.pid(), ok
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts connections on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "nothing listens on %s", addr)
}

// bodyBlock is random bytes both ends of a transfer share: a body is a
// run of it, wrapping around, from an offset its seed chooses. Copying is
// cheap, so a 10 MB body costs the test little besides moving it.
var bodyBlock = func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 1<<20+7)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}()

// writeBody writes size bytes made from seed: a body both ends can make
// and check without sending it twice.
func writeBody(w io.Writer, size int, seed uint64) error {
	off := int(seed*4099) % len(bodyBlock)
	for size > 0 {
		n := min(size, len(bodyBlock)-off)
		if _, err := w.Write(bodyBlock[off : off+n]); err != nil {
			return err
		}
		size -= n
		off = 0
	}
	return nil
}

// runReverseProxy serves as Go's httputil.ReverseProxy in front of upstream.
func runReverseProxy(addr, upstream string) {
	target, err := url.Parse("http://" + upstream)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 32}
	http.Serve(ln, proxy)
}

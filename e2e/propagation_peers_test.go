package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// requestsOnConn keys a connection's request counter in its context.
type requestsOnConn struct{}

// runEcho answers every request with what the next hop would see of its
// context: the traceparent header it received, its body's length and its
// number on its connection (1 for the first).
func runEcho(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	srv := &http.Server{
		// Each connection counts its requests, so a test can tell a
		// connection's first request from the ones that reuse it.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, requestsOnConn{}, new(atomic.Int64))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			seq := r.Context().Value(requestsOnConn{}).(*atomic.Int64).Add(1)
			fmt.Fprintf(w, "tp=%s len=%d declared=%d seq=%d", r.Header.Get("traceparent"), n, r.ContentLength, seq)
		}),
	}
	srv.Serve(ln)
}

// ownTraceparent is what an SDK-instrumented client would send.
const ownTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// runEchoClient sends n requests to url ("{i}" is the request's number)
// over `concurrency` keep-alive connections (a connection per request with
// E2E_CLOSE set), odd ones as POSTs with an i-byte body, then one more that
// carries its own traceparent, and prints "ECHO <i> <answer>" for each
// ("own" for the last). With wait, it opens its connection with request 0,
// says CONNECTED and waits for a line on stdin before the rest.
func runEchoClient(url string, n, concurrency int, wait bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency,
		DisableKeepAlives: os.Getenv("E2E_CLOSE") != ""}}
	send := func(i int, header string) string {
		u := strings.ReplaceAll(url, "{i}", strconv.Itoa(i))
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if i%2 == 1 {
			req, _ = http.NewRequest(http.MethodPost, u, bytes.NewReader(make([]byte, i)))
		}
		if header != "" {
			req.Header.Set("traceparent", header)
		}
		resp, err := client.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	first := 0
	if wait {
		say("ECHO 0 %s", send(0, ""))
		say("CONNECTED")
		bufio.NewReader(os.Stdin).ReadString('\n')
		first = 1
	}
	work := make(chan int, n)
	for i := first; i < n; i++ {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				say("ECHO %d %s", i, send(i, ""))
			}
		}()
	}
	wg.Wait()
	say("ECHO own %s", send(n, ownTraceparent))
	say("DONE")
	os.Exit(0)
}

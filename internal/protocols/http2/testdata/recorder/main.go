// Command recorder records the bytes real HTTP/2 peers exchange over h2c
// on loopback, through a TCP proxy that notes each read it makes, with its
// time: grpc-go, Python grpcio, Node.js http2, curl and Go's h2c. The
// captures (../captures/*.cap.gz) are replayed by the package's tests.
//
// It is a module of its own, kept out of the receiver's go.mod; run it
// from this directory with `go run . -out ../captures` (it needs
// /usr/bin/python3 with grpcio, node, and curl).
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

var outDir = flag.String("out", "../captures", "directory of the captures")

func main() {
	flag.Parse()
	log.SetFlags(0)
	for _, sc := range []struct {
		name string
		run  func(proxy string) error
		// serve starts the server and returns its address and a stop.
		serve func() (string, func(), error)
	}{
		{"grpcgo", grpcGoCalls, grpcGoServer},
		{"grpcgo_concurrent", grpcGoConcurrent, grpcGoServer},
		{"python", pythonCalls, pythonServer},
		{"node", nodeCalls, nodeServer},
		{"curl", curlCalls, goH2CServer},
		{"goh2c", goH2CCalls, goH2CServer},
		{"upgrade", curlUpgrade, goH2CServer},
	} {
		addr, stop, err := sc.serve()
		if err != nil {
			log.Fatalf("%s: starting the server: %v", sc.name, err)
		}
		rec, err := newProxy(addr)
		if err != nil {
			log.Fatalf("%s: %v", sc.name, err)
		}
		if err := sc.run(rec.addr()); err != nil {
			log.Fatalf("%s: %v", sc.name, err)
		}
		time.Sleep(200 * time.Millisecond) // let the last bytes through
		rec.close()
		stop()
		path := filepath.Join(*outDir, sc.name+".cap.gz")
		if err := rec.save(path); err != nil {
			log.Fatalf("%s: %v", sc.name, err)
		}
		log.Printf("%s: %d connections, %d reads -> %s", sc.name, rec.conns, len(rec.recs), path)
	}
}

// A capture is a gzip stream: "H2CAP1\n", then records of uvarint
// connection, one byte direction (0 client to server, 1 server to client,
// 2 the connection closed), uvarint nanoseconds since the recorder
// started, uvarint length, and that many bytes.
const magic = "H2CAP1\n"

type record struct {
	conn int
	dir  byte
	t    time.Duration
	data []byte
}

// proxy forwards connections to a server and records what it reads.
type proxy struct {
	ln     net.Listener
	target string
	start  time.Time
	mu     sync.Mutex
	recs   []record
	conns  int
	wg     sync.WaitGroup
}

var started = time.Now()

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &proxy{ln: ln, target: target, start: started}
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		id := p.conns
		p.conns++
		p.mu.Unlock()
		p.wg.Add(1)
		go p.forward(id, c.(*net.TCPConn))
	}
}

func (p *proxy) note(conn int, dir byte, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs = append(p.recs, record{conn: conn, dir: dir, t: time.Since(p.start), data: append([]byte(nil), data...)})
}

func (p *proxy) forward(id int, client *net.TCPConn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		log.Printf("proxy dial: %v", err)
		client.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go p.pipe(&wg, id, 0, client, server.(*net.TCPConn))
	go p.pipe(&wg, id, 1, server.(*net.TCPConn), client)
	wg.Wait()
	client.Close()
	server.Close()
	p.note(id, 2, nil)
}

// pipe copies from src to dst, one read at a time, noting each read.
func (p *proxy) pipe(wg *sync.WaitGroup, id int, dir byte, src, dst *net.TCPConn) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.note(id, dir, buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.CloseWrite()
}

func (p *proxy) close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *proxy) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("saving the capture: %w", err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	w := bufio.NewWriter(zw)
	w.WriteString(magic)
	var tmp [binary.MaxVarintLen64]byte
	for _, r := range p.recs {
		w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(r.conn))])
		w.WriteByte(r.dir)
		w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(r.t))])
		w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(r.data)))])
		w.Write(r.data)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("saving the capture: %w", err)
	}
	return errors.Join(zw.Close(), f.Close())
}

// run starts a command and waits for it, with its output shown on error.
func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// startServer starts a command that prints the port it listens on as its
// first line.
func startServer(name string, args ...string) (string, func(), error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting %s: %w", name, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return "", nil, fmt.Errorf("%s printed no port: %w", name, err)
	}
	go io.Copy(io.Discard, stdout)
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	return "127.0.0.1:" + strings.TrimSpace(line), stop, nil
}

func pythonServer() (string, func(), error) { return startServer("/usr/bin/python3", "grpc_server.py") }

func pythonCalls(proxy string) error { return run("/usr/bin/python3", "grpc_client.py", proxy) }

func nodeServer() (string, func(), error) { return startServer("node", "h2_server.js") }

func nodeCalls(proxy string) error { return run("node", "h2_client.js", proxy) }

// curlCalls makes three requests with prior knowledge, one connection
// each (curl 7.88 fails to reuse a prior-knowledge connection):
// GET /hello with a traceparent (200), GET /missing (404), POST /echo (200).
func curlCalls(proxy string) error {
	base := "http://" + proxy
	for _, args := range [][]string{
		{"-H", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", base + "/hello"},
		{base + "/missing"},
		{"-d", "name=value", base + "/echo"},
	} {
		if err := run("curl", append([]string{"-sS", "--http2-prior-knowledge", "-o", "/dev/null"}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// curlUpgrade asks for h2c with an HTTP/1.1 Upgrade: GET /hello, answered
// on stream 1 once upgraded.
func curlUpgrade(proxy string) error {
	return run("curl", "-sS", "--http2", "-o", "/dev/null", "http://"+proxy+"/hello")
}

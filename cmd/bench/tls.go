package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The TLS bench: nginx with TLS and a Go net/http ServeTLS server under
// wrk over HTTPS (keep-alive), without the collector and with it selecting
// the server (tls: true, the default), in alternating rounds. It prints
// the throughput ratio and the TLS uprobe hits per request, which the
// collector's own metrics count.
//
// wrk runs with a copy of libssl of its own (LD_LIBRARY_PATH): the
// kernel places a uprobe on a file for every process that maps it, and
// wrk would otherwise pay for the probes put on nginx's libssl too, which
// is not the server's cost.

// The ports of the TLS bench (18300-18399 are its range).
const (
	tlsNginxPort     = 18301
	tlsGoPort        = 18302
	tlsTelemetryPort = 18303
)

// serveTLS is the measured Go HTTPS server: small responses, keep-alive.
func serveTLS(addr, cert, key string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello, world\n"))
	})}
	fmt.Println("ERROR", srv.ServeTLS(ln, cert, key))
}

type tlsTarget struct {
	name string
	pid  int // the process that serves (nginx's worker)
	port int
}

type tlsResult struct {
	without, with []float64 // req/s
	hitsPerReq    []float64
}

// runTLS measures the TLS servers and prints a Markdown table.
func runTLS(collector string, rounds int, d time.Duration, conns int) error {
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench-tls")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cert, key, err := writeCert(dir)
	if err != nil {
		return err
	}
	wrkLib := filepath.Join(dir, "wrklib")
	if err := copyLibssl(wrkLib); err != nil {
		return err
	}
	nginx, worker, err := startTLSNginx(dir, cert, key)
	if err != nil {
		return err
	}
	defer func() { syscall.Kill(-nginx.Process.Pid, syscall.SIGKILL); nginx.Wait() }()
	goServer, err := startTLSGo(cert, key)
	if err != nil {
		return err
	}
	defer goServer.Process.Kill()
	targets := []tlsTarget{{"nginx (OpenSSL)", worker, tlsNginxPort}, {"Go net/http (crypto/tls)", goServer.Process.Pid, tlsGoPort}}
	results := make([]tlsResult, len(targets))
	for r := 0; r < rounds; r++ {
		for i, tg := range targets {
			rps, _, err := wrkTLS(tg.port, d, conns, wrkLib)
			if err != nil {
				return fmt.Errorf("%s without the collector: %w", tg.name, err)
			}
			results[i].without = append(results[i].without, rps)
			rps, hits, err := measureTLS(collector, dir, tg, d, conns, wrkLib)
			if err != nil {
				return fmt.Errorf("%s with the collector: %w", tg.name, err)
			}
			results[i].with = append(results[i].with, rps)
			results[i].hitsPerReq = append(results[i].hitsPerReq, hits)
		}
	}
	fmt.Printf("\nTLS: HTTPS servers under wrk -t2 -c%d (keep-alive, 13-byte responses), %d alternating rounds of %v, "+
		"with and without the collector selecting the server (tls: true)\n\n", conns, rounds, d)
	fmt.Println("| server | req/s without | req/s with | ratio | TLS uprobe hits / request |")
	fmt.Println("|---|---|---|---|---|")
	for i, tg := range targets {
		r := results[i]
		fmt.Printf("| %s | %.0f | %.0f | %.3f | %.1f |\n", tg.name, mean(r.without), mean(r.with), mean(r.with)/mean(r.without), mean(r.hitsPerReq))
	}
	return nil
}

// measureTLS runs wrk against tg with a collector selecting it, and
// returns req/s and the uprobe hits per request.
func measureTLS(collector, dir string, tg tlsTarget, d time.Duration, conns int, wrkLib string) (float64, float64, error) {
	config := filepath.Join(dir, "tls.yaml")
	if err := os.WriteFile(config, []byte(telemetryConfig(tg.pid, tlsTelemetryPort)), 0o644); err != nil {
		return 0, 0, err
	}
	col, err := startCollector(collector, config)
	if err != nil {
		return 0, 0, err
	}
	defer func() { col.Process.Signal(os.Interrupt); col.Wait() }()
	// The probes are attached once the collector says it traces the
	// server's TLS.
	deadline := time.Now().Add(15 * time.Second)
	for scrape("otelcol_receiver_ebpf_tls_processes", `tracing="plaintext"`) < 1 {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("the collector did not probe %s's TLS", tg.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	hits0 := scrape("otelcol_receiver_ebpf_uprobe_hits", "")
	rps, requests, err := wrkTLS(tg.port, d, conns, wrkLib)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(200 * time.Millisecond) // past the next read of the kernel's counters
	hits := scrape("otelcol_receiver_ebpf_uprobe_hits", "") - hits0
	return rps, hits / float64(requests), nil
}

// scrape sums the samples of the collector's own metric name whose labels
// contain label.
func scrape(name, label string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", tlsTelemetryPort))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, label) {
			continue
		}
		if rest := line[len(name):]; rest != "" && rest[0] != '{' && rest[0] != ' ' && !strings.HasPrefix(rest, "_total") {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		total += v
	}
	return total
}

var wrkRequestsTLS = regexp.MustCompile(`(\d+) requests in`)

func wrkTLS(port int, d time.Duration, conns int, lib string) (float64, int, error) {
	cmd := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+d.String(), fmt.Sprintf("https://127.0.0.1:%d/", port))
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	m := wrkRequestsTLS.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("wrk said: %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		return 0, 0, fmt.Errorf("wrk saw errors: %s", out)
	}
	return float64(n) / d.Seconds(), n, nil
}

// writeCert writes a self-signed certificate for 127.0.0.1 into dir.
func writeCert(dir string) (string, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return cert, key, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o644)
}

// copyLibssl puts a copy of the system's libssl in dir.
func copyLibssl(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	in, err := os.Open("/usr/lib/x86_64-linux-gnu/libssl.so.3")
	if err != nil {
		return fmt.Errorf("wrk's own libssl: %w", err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "libssl.so.3"))
	if err != nil {
		return err
	}
	defer out.Close()
	_, err = io.Copy(out, in)
	return err
}

// startTLSNginx runs nginx (one worker) with TLS on tlsNginxPort and
// returns its master and its worker's pid.
func startTLSNginx(dir, cert, key string) (*exec.Cmd, int, error) {
	conf := filepath.Join(dir, "nginx.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`user root;
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr error;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%[2]d ssl;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        location / { return 200 "hello, world\n"; }
    }
}
`, dir, tlsNginxPort, cert, key)), 0o644)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("nginx: %w", err)
	}
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		var worker int
		if _, err := fmt.Sscan(string(b), &worker); err == nil {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsNginxPort)); err == nil {
				c.Close()
				return cmd, worker, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	return nil, 0, fmt.Errorf("nginx did not start")
}

func startTLSGo(cert, key string) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], "serve-tls", fmt.Sprintf("127.0.0.1:%d", tlsGoPort), cert, key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "READY") {
		cmd.Process.Kill()
		return nil, fmt.Errorf("Go TLS server: %s", line)
	}
	return cmd, nil
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	grpcstatus "google.golang.org/grpc/status"
)

// grpcPort is where the measured gRPC server listens.
const grpcPort = 18280

// unaryServer answers UnaryCall with a payload of the size asked.
type unaryServer struct {
	testpb.UnimplementedTestServiceServer
}

func (unaryServer) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

// serveGRPC is the measured gRPC server (grpc-go, h2c).
func serveGRPC(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, unaryServer{})
	fmt.Println("READY")
	s.Serve(ln)
}

type grpcResult struct {
	cps       []float64 // calls per second
	cpuPer10k []float64 // collector CPU seconds per 10,000 calls
}

// runGRPC measures calls/second of the gRPC server under the load of
// `concurrency` unary calls at once on one connection, without the
// collector and with the collector selecting the server, in alternating
// rounds, and prints a Markdown table.
func runGRPC(collector string, rounds int, d time.Duration, concurrency int) error {
	server, err := startGRPCServer(grpcPort)
	if err != nil {
		return err
	}
	defer server.Process.Kill()
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench-grpc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	modes := []mode{
		{"no collector", ""},
		{"collector, server selected", writeConfig(dir, "grpc-selected", fmt.Sprintf("pids: [%d]", server.Process.Pid), "")},
	}
	target := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	results := make([]grpcResult, len(modes))
	for r := 0; r < rounds; r++ {
		for i, m := range modes {
			if err := measureGRPC(collector, m, target, d, concurrency, &results[i]); err != nil {
				return fmt.Errorf("grpc, %s: %w", m.name, err)
			}
		}
	}
	base := mean(results[0].cps)
	fmt.Printf("\ngRPC: grpc-go server, a Go client making %d unary calls at once on one connection "+
		"(10-byte requests, 100-byte responses), %d alternating rounds of %v\n\n", concurrency, rounds, d)
	fmt.Println("| mode | calls/s (mean) | ratio | collector CPU s / 10k calls |")
	fmt.Println("|---|---|---|---|")
	for i, m := range modes {
		cpu := "-"
		if m.config != "" {
			cpu = fmt.Sprintf("%.3f", mean(results[i].cpuPer10k))
		}
		fmt.Printf("| %s | %.0f | %.3f | %s |\n", m.name, mean(results[i].cps), mean(results[i].cps)/base, cpu)
	}
	return nil
}

func startGRPCServer(port int) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], "serve-grpc", fmt.Sprintf("127.0.0.1:%d", port))
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
		return nil, fmt.Errorf("grpc server: %s", line)
	}
	return cmd, nil
}

func measureGRPC(collector string, m mode, target string, d time.Duration, concurrency int, res *grpcResult) error {
	var col *exec.Cmd
	if m.config != "" {
		var err error
		if col, err = startCollector(collector, m.config); err != nil {
			return err
		}
		defer func() { col.Process.Signal(os.Interrupt); col.Wait() }()
	}
	cpu0 := cpuSeconds(col)
	calls, err := grpcLoad(target, d, concurrency)
	if err != nil {
		return err
	}
	res.cps = append(res.cps, float64(calls)/d.Seconds())
	if col != nil {
		res.cpuPer10k = append(res.cpuPer10k, (cpuSeconds(col)-cpu0)/float64(calls)*10000)
	}
	return nil
}

// grpcLoad makes unary calls from `concurrency` goroutines on one new
// connection for d, and returns how many completed. A failed call stops
// the run: the figures would mean nothing.
func grpcLoad(target string, d time.Duration, concurrency int) (int64, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	req := &testpb.SimpleRequest{ResponseSize: 100, Payload: &testpb.Payload{Body: make([]byte, 10)}}
	// A first call opens the connection outside the measured time.
	if _, err := client.UnaryCall(context.Background(), req); err != nil {
		return 0, fmt.Errorf("first call: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var calls atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := client.UnaryCall(ctx, req); err != nil {
					// The run's end fails the calls in flight: gRPC's own
					// timer may say so before the context does.
					if code := grpcstatus.Code(err); code != codes.DeadlineExceeded && code != codes.Canceled {
						once.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	return calls.Load(), firstErr
}

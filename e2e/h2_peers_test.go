package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func init() {
	peerRoles["h2c-server"] = func() { runH2CServer(os.Getenv("E2E_ADDR")) }
	peerRoles["h2c-client"] = func() { runH2CClient(os.Getenv("E2E_TARGET")) }
	peerRoles["grpc-edge-server"] = func() { runGRPCEdgeServer(os.Getenv("E2E_ADDR")) }
	peerRoles["grpc-edge-client"] = func() { runGRPCEdgeClient(os.Getenv("E2E_TARGET")) }
	peerRoles["grpc-raw-server"] = func() { runRawServer(os.Getenv("E2E_ADDR"), os.Getenv("E2E_DOWNSTREAM")) }
	peerRoles["grpc-raw-client"] = func() {
		runRawCallers(os.Getenv("E2E_TARGET"), envInt("E2E_CALLERS"), envInt("E2E_CALLS"))
	}
}

// runH2CServer serves plain HTTP/2 over cleartext with x/net's h2c
// handler, which takes prior knowledge and HTTP/1.1 upgrades alike:
// /status/{code} answers code, POST /upload answers 201 with the size it
// read, anything else 200 "hello".
func runH2CServer(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, n)
	})
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
	(&http.Server{Handler: h2c.NewHandler(mux, &http2.Server{})}).Serve(ln)
}

// h2cRequests are what runH2CClient sends, in order on one connection,
// then h2cConcurrent GETs of /c/{i} at once on the same connection.
var h2cRequests = []struct {
	method, path string
	body         int
	status       int
}{
	{"GET", "/hello", 0, 200},
	{"GET", "/hello", 0, 200},
	{"GET", "/status/404", 0, 404},
	{"GET", "/status/503", 0, 503},
	{"POST", "/upload", 64 << 10, 201},
	{"DELETE", "/items/7", 0, 200},
}

const h2cConcurrent = 10

// runH2CClient is a Go HTTP/2 client with prior knowledge (no upgrade, no
// TLS): it prints DONE and the count of requests that did not get the
// status expected.
func runH2CClient(target string) {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	client := &http.Client{Transport: tr}
	do := func(method, path string, body, want int) bool {
		var rd io.Reader
		if body > 0 {
			rd = strings.NewReader(strings.Repeat("x", body))
		}
		req, err := http.NewRequest(method, "http://"+target+path, rd)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == want
	}
	failed := 0
	for _, r := range h2cRequests {
		if !do(r.method, r.path, r.body, r.status) {
			failed++
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range h2cConcurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !do("GET", "/c/"+strconv.Itoa(i), 0, 200) {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Println("DONE", failed)
}

// edgeService answers the calls of runGRPCEdgeClient in the ways gRPC
// calls end: trailers-only errors, errors after response headers (HTTP
// 200, grpc-status in the trailers), errors after messages, calls the
// client cancels (RST_STREAM), and a stop of the server (GOAWAY).
type edgeService struct {
	testpb.UnimplementedTestServiceServer
	stop func()
}

// UnaryCall answers ResponseStatus: at once (trailers-only), or after its
// headers when FillUsername is set. FillServerId asks the server to stop
// gracefully once the call is answered.
func (e edgeService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if in.GetFillServerId() {
		go func() { time.Sleep(50 * time.Millisecond); e.stop() }()
	}
	if st := in.GetResponseStatus(); st.GetCode() != 0 {
		if in.GetFillUsername() {
			if err := grpc.SendHeader(ctx, metadata.Pairs("x-edge", "headers-first")); err != nil {
				return nil, err
			}
		}
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

// StreamingOutputCall sends a message per parameter, then ends with
// ResponseStatus.
func (edgeService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	if st := in.GetResponseStatus(); st.GetCode() != 0 {
		return status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return nil
}

// FullDuplexCall answers each message with the sizes it asks for, until
// the client ends or cancels the call.
func (edgeService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	return grpcService{}.FullDuplexCall(stream)
}

func runGRPCEdgeServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, edgeService{stop: s.GracefulStop})
	fmt.Println("READY", ln.Addr().String())
	s.Serve(ln)
	// GracefulStop returns once the calls in flight ended; Serve already.
	time.Sleep(200 * time.Millisecond)
}

// The calls runGRPCEdgeClient makes, with the counts the tests expect.
const (
	edgeOK            = 3 // UnaryCall OK
	edgeTrailersOnly  = 2 // UnaryCall NOT_FOUND, trailers-only
	edgeAfterHeaders  = 2 // UnaryCall INTERNAL after its headers
	edgeAfterMessages = 1 // StreamingOutputCall DATA_LOSS after 2 messages
	edgeCancelled     = 1 // FullDuplexCall the client cancels (RST_STREAM CANCEL)
	// and then: one FullDuplexCall open across the server's stop (GOAWAY),
	// ending OK; the UnaryCall that stops the server, OK.
)

// runGRPCEdgeClient makes the calls above on one connection and prints
// DONE and the count of calls that did not end as expected.
func runGRPCEdgeClient(target string) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	ctx := context.Background()
	failed := 0
	expect := func(err error, code codes.Code) {
		if status.Code(err) != code {
			fmt.Fprintln(os.Stderr, "edge client: got", err, "want", code)
			failed++
		}
	}
	unary := func(code codes.Code, headersFirst bool) {
		req := &testpb.SimpleRequest{ResponseSize: 10, FillUsername: headersFirst}
		if code != codes.OK {
			req.ResponseStatus = &testpb.EchoStatus{Code: int32(code), Message: "edge " + code.String()}
		}
		_, err := client.UnaryCall(ctx, req)
		expect(err, code)
	}
	for range edgeOK {
		unary(codes.OK, false)
	}
	for range edgeTrailersOnly {
		unary(codes.NotFound, false)
	}
	for range edgeAfterHeaders {
		unary(codes.Internal, true)
	}
	out, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 100}, {Size: 200}},
		ResponseStatus:     &testpb.EchoStatus{Code: int32(codes.DataLoss), Message: "lost"}})
	for err == nil {
		_, err = out.Recv()
	}
	expect(err, codes.DataLoss)

	// Cancelled after its first answer: the client resets the stream.
	cctx, cancel := context.WithCancel(ctx)
	duplex, err := client.FullDuplexCall(cctx)
	if err == nil {
		err = duplex.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}}})
	}
	if err == nil {
		_, err = duplex.Recv()
	}
	expect(err, codes.OK)
	cancel()
	_, err = duplex.Recv()
	expect(err, codes.Canceled)

	// A call open while the server stops: GOAWAY, and the call ends well.
	open, err := client.FullDuplexCall(ctx)
	if err == nil {
		err = open.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}}})
	}
	if err == nil {
		_, err = open.Recv()
	}
	expect(err, codes.OK)
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{FillServerId: true})
	expect(err, codes.OK)
	time.Sleep(300 * time.Millisecond) // the GOAWAY arrives
	if err = open.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 20}}}); err == nil {
		_, err = open.Recv()
	}
	expect(err, codes.OK)
	open.CloseSend()
	for err == nil {
		_, err = open.Recv()
	}
	if !errors.Is(err, io.EOF) {
		expect(err, codes.OK)
	}
	fmt.Println("DONE", failed)
}

// rawCodec passes messages as they are: the relay's calls carry bytes,
// and their methods are made up per call, so no generated code serves them.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// runRawServer answers any unary call with what it read. With downstream
// set it is a service that calls another while serving: a call of
// /relay.Front/{name} calls /relay.Back/{name} there first (its own
// connection, kept), and answers what that answered.
func runRawServer(addr, downstream string) {
	var back *grpc.ClientConn
	if downstream != "" {
		var err error
		if back, err = grpc.NewClient(downstream, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}))); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
	}
	handler := func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		out := in
		if back != nil {
			next := strings.Replace(method, "/relay.Front/", "/relay.Back/", 1)
			if err := back.Invoke(stream.Context(), next, &in, &out); err != nil {
				return err
			}
		}
		return stream.SendMsg(&out)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(handler))
	fmt.Println("READY", ln.Addr().String())
	s.Serve(ln)
}

// rawCallID names call i of caller c: the method of every hop of that call
// ends with it, which is how the test finds a call's spans.
func rawCallID(c, i int) string { return fmt.Sprintf("Call%02d%03d", c, i) }

// runRawCallers runs `callers` goroutines at once, each making `calls`
// unary calls of /relay.Front/{id} in turn, on one connection; it prints
// DONE and the count of calls that failed.
func runRawCallers(target string, callers, calls int) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	start := make(chan struct{})
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range calls {
				id := rawCallID(c, i)
				in, out := []byte(id), []byte(nil)
				if err := conn.Invoke(context.Background(), "/relay.Front/"+id, &in, &out); err != nil || string(out) != id {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	fmt.Println("DONE", failed)
}

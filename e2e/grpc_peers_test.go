package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

func init() {
	peerRoles["grpc-server"] = func() { runGRPCServer(cmp.Or(os.Getenv("E2E_NETWORK"), "tcp"), os.Getenv("E2E_ADDR")) }
	peerRoles["grpc-client"] = func() {
		runGRPCClient(os.Getenv("E2E_TARGET"), grpcCalls{unary: envInt("E2E_UNARY"), concurrent: envInt("E2E_CONCURRENT")})
	}
}

// grpcService is grpc-go's interop TestService: what each call answers is
// chosen by its request.
type grpcService struct {
	testpb.UnimplementedTestServiceServer
}

func (grpcService) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if st := in.GetResponseStatus(); st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

func (grpcService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (grpcService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
}

func (grpcService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range in.GetResponseParameters() {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
				return err
			}
		}
	}
}

// runGRPCServer serves the TestService over h2c on addr.
func runGRPCServer(network, addr string) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, grpcService{})
	fmt.Println("READY", ln.Addr().String())
	s.Serve(ln)
}

// grpcCalls is what runGRPCClient makes, on one connection: unary calls
// (every fifth answered NOT_FOUND), one of each streaming kind, and then
// `concurrent` unary calls at once with 64 KiB messages each way.
type grpcCalls struct {
	unary, concurrent int
}

func runGRPCClient(target string, calls grpcCalls) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	defer conn.Close()
	fmt.Println("DONE", grpcWorkload(context.Background(), testpb.NewTestServiceClient(conn), calls))
	os.Exit(0)
}

// grpcWorkload makes the calls on client and returns how many did not
// end as they should.
func grpcWorkload(ctx context.Context, client testpb.TestServiceClient, calls grpcCalls) int {
	failed := 0
	for i := 0; i < calls.unary; i++ {
		req := &testpb.SimpleRequest{ResponseSize: 10}
		if i%5 == 4 {
			req.ResponseStatus = &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}
		}
		if _, err := client.UnaryCall(ctx, req); (err != nil) != (i%5 == 4) {
			failed++
		}
	}
	out, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 100}, {Size: 200}, {Size: 300}}})
	if err == nil {
		for err == nil {
			_, err = out.Recv()
		}
	}
	if !errors.Is(err, io.EOF) {
		failed++
	}
	in, err := client.StreamingInputCall(ctx)
	if err == nil {
		for range 3 {
			in.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 1000)}})
		}
		_, err = in.CloseAndRecv()
	}
	if err != nil {
		failed++
	}
	duplex, err := client.FullDuplexCall(ctx)
	if err == nil {
		for range 3 {
			duplex.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 50}}})
			duplex.Recv()
		}
		duplex.CloseSend()
		for err == nil {
			_, err = duplex.Recv()
		}
	}
	if !errors.Is(err, io.EOF) {
		failed++
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range calls.concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 64 << 10, Payload: &testpb.Payload{Body: make([]byte, 64<<10)}})
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testService is a small TestService: what each call answers is chosen by
// its request.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (testService) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if st := in.GetResponseStatus(); st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

func (testService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		select {
		case <-time.After(time.Duration(p.GetIntervalUs()) * time.Microsecond):
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
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

func (testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if st := in.GetResponseStatus(); st.GetCode() != 0 {
			return status.Error(codes.Code(st.GetCode()), st.GetMessage())
		}
		for _, p := range in.GetResponseParameters() {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
				return err
			}
		}
	}
}

func grpcGoServer() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, testService{})
	go s.Serve(ln)
	return ln.Addr().String(), s.Stop, nil
}

func dial(proxy string) (*grpc.ClientConn, testpb.TestServiceClient, error) {
	cc, err := grpc.NewClient(proxy, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	return cc, testpb.NewTestServiceClient(cc), nil
}

// grpcGoCalls makes one call of each kind, in order, on one connection:
//
//	1  UnaryCall, traceparent in its metadata   OK
//	3  UnaryCall                                NOT_FOUND
//	5  /grpc.testing.TestService/Nope           UNIMPLEMENTED (trailers-only)
//	7  StreamingOutputCall, 3 responses         OK
//	9  StreamingInputCall, 3 requests           OK
//	11 FullDuplexCall, 3 exchanges              OK
//	13 StreamingOutputCall, cancelled by the client after one response
//	15 UnaryCall                                INTERNAL
//	17 EmptyCall                                OK
//	19 FullDuplexCall, failed by the server     DATA_LOSS
func grpcGoCalls(proxy string) error {
	cc, c, err := dial(proxy)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx := context.Background()
	expect := func(err error, code codes.Code) error {
		if status.Code(err) != code {
			return fmt.Errorf("got %v, want %v", err, code)
		}
		return nil
	}
	tctx := metadata.AppendToOutgoingContext(ctx, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	_, err = c.UnaryCall(tctx, &testpb.SimpleRequest{ResponseSize: 100, Payload: &testpb.Payload{Body: make([]byte, 10)}})
	if err := expect(err, codes.OK); err != nil {
		return err
	}
	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such row"}})
	if err := expect(err, codes.NotFound); err != nil {
		return err
	}
	err = cc.Invoke(ctx, "/grpc.testing.TestService/Nope", &testpb.Empty{}, &testpb.Empty{})
	if err := expect(err, codes.Unimplemented); err != nil {
		return err
	}
	so, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 20}, {Size: 30}}})
	if err != nil {
		return err
	}
	for err == nil {
		_, err = so.Recv()
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	si, err := c.StreamingInputCall(ctx)
	if err != nil {
		return err
	}
	for i := range 3 {
		if err := si.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 100*(i+1))}}); err != nil {
			return err
		}
	}
	if _, err := si.CloseAndRecv(); err != nil {
		return err
	}
	fd, err := c.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	for range 3 {
		if err := fd.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 50}}}); err != nil {
			return err
		}
		if _, err := fd.Recv(); err != nil {
			return err
		}
	}
	fd.CloseSend()
	if _, err := fd.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("bidi end: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	so, err = c.StreamingOutputCall(cctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{
		{Size: 10}, {Size: 10, IntervalUs: 500000}, {Size: 10, IntervalUs: 500000}}})
	if err != nil {
		cancel()
		return err
	}
	if _, err := so.Recv(); err != nil {
		cancel()
		return err
	}
	cancel()
	if _, err := so.Recv(); status.Code(err) != codes.Canceled {
		return fmt.Errorf("cancelled stream: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Internal), Message: "boom"}})
	if err := expect(err, codes.Internal); err != nil {
		return err
	}
	if _, err := c.EmptyCall(ctx, &testpb.Empty{}); err != nil {
		return err
	}
	fd, err = c.FullDuplexCall(ctx)
	if err != nil {
		return err
	}
	if err := fd.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.DataLoss), Message: "lost"}}); err != nil {
		return err
	}
	if _, err := fd.Recv(); status.Code(err) != codes.DataLoss {
		return fmt.Errorf("failed bidi: %v", err)
	}
	return nil
}

// grpcGoConcurrent makes 100 concurrent unary calls of 64 KiB each way on
// one connection.
func grpcGoConcurrent(proxy string) error {
	cc, c, err := dial(proxy)
	if err != nil {
		return err
	}
	defer cc.Close()
	// One call first, so that all 100 go on the connection it opens.
	if _, err := c.EmptyCall(context.Background(), &testpb.Empty{}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.UnaryCall(context.Background(), &testpb.SimpleRequest{ResponseSize: 64 << 10, Payload: &testpb.Payload{Body: make([]byte, 64<<10)}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

package semconv

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
)

// GRPC is the rpc.system.name of gRPC.
const GRPC = "grpc"

// OtherMethod is the rpc.method of a method that is not recognised: the
// server said it does not know it, it is not of the form
// "package.Service/Method", or its service had too many distinct methods
// already. The method as sent is then in rpc.method_original.
const OtherMethod = "_OTHER"

// RPCDurationBounds are the conventions' advised buckets for
// rpc.server.call.duration and rpc.client.call.duration, in seconds.
var RPCDurationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// RPC is one remote procedure call as the conventions (v1.44) describe
// it. Every field is what the wire said, never a guess: a field that could
// not be read (a header block lost with the events that carried it) is
// left empty and is then left out. rpc.service is not used: v1.44 folds
// the service into rpc.method.
type RPC struct {
	System string // rpc.system.name: GRPC
	// Method is the method as sent ("pkg.Service/Method": :path without
	// its leading "/"); "" when unknown.
	Method string
	// Unrecognized is set when the server answered that it has no such
	// method (gRPC UNIMPLEMENTED): rpc.method is then _OTHER.
	Unrecognized bool
	// StatusCode is rpc.response.status_code ("OK", "NOT_FOUND", or the
	// number of a code gRPC does not name); "" when no status was seen.
	StatusCode string
	// ErrorType is error.type of a call that ended without a status:
	// NoResponse, or the HTTP/2 error code of the stream's reset
	// ("CANCEL", "REFUSED_STREAM"...). "" otherwise.
	ErrorType string
	// ServerAddress and ServerPort are what the client named the server
	// (gRPC's :authority); "" and 0 when it did not.
	ServerAddress string
	ServerPort    int

	shown, original string // rpc.method and rpc.method_original, once decided
	decided         bool
}

// The rpc.server.call.duration and rpc.client.call.duration families.
var (
	RPCServer = &redmetrics.Family{Instruments: []redmetrics.Instrument{{
		Name: "rpc.server.call.duration", Unit: "s",
		Description: "Measures the duration of an incoming Remote Procedure Call (RPC).", Bounds: RPCDurationBounds,
	}}, Attributes: rpcMetricAttributes}
	RPCClient = &redmetrics.Family{Instruments: []redmetrics.Instrument{{
		Name: "rpc.client.call.duration", Unit: "s",
		Description: "Measures the duration of an outgoing Remote Procedure Call (RPC).", Bounds: RPCDurationBounds,
	}}, Attributes: rpcMetricAttributes}
)

// Key slots of the RPC families.
const (
	rpcSystem = iota
	rpcMethod
	rpcStatus
	rpcErrorType
	rpcServerAddress // clients only: a server's is opt-in
)

// SetAuthority sets ServerAddress and ServerPort from what the client
// named the server (gRPC's :authority: "host", "host:port", "[::1]:port").
func (r *RPC) SetAuthority(authority string) {
	r.ServerAddress, r.ServerPort = splitHost(authority)
}

// GRPCStatusName is the name of gRPC status code c ("OK", "CANCELLED", ...),
// or its number for a code gRPC does not define.
func GRPCStatusName(c int) string {
	if c >= 0 && c < len(grpcStatusNames) {
		return grpcStatusNames[c]
	}
	return strconv.Itoa(c)
}

var grpcStatusNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// serverError reports whether a server's status counts as its error: the
// conventions name the statuses that are the server's fault.
func serverError(status string) bool {
	switch status {
	case "UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS":
		return true
	}
	return false
}

// outcome is the call's error.type and whether its span is an error.
func (r *RPC) outcome(x *protocols.Exchange) (errorType string, failed bool) {
	server := x.Role == protocols.RoleServer
	switch {
	case r.StatusCode != "":
		if r.StatusCode == "OK" || server && !serverError(r.StatusCode) {
			return "", false
		}
		return r.StatusCode, true
	case r.ErrorType == "":
		return "", false // a status that could not be read: nothing is said
	case server && (r.ErrorType == "CANCEL" || r.ErrorType == "NO_ERROR"):
		// The client gave up on the call: gRPC servers see it as
		// CANCELLED, which is no error of theirs.
		return "", false
	}
	return r.ErrorType, true
}

// RPCMethods bounds the distinct rpc.method values of each service (see
// cardinality.Limit): a peer that calls made-up methods must not make a
// metric series per method. Later ones become OtherMethod, counted.
type RPCMethods struct {
	*cardinality.Limit
}

// NewRPCMethods returns an RPCMethods of at most max methods per service.
func NewRPCMethods(max int) *RPCMethods {
	return &RPCMethods{cardinality.New(max)}
}

// Method returns the rpc.method of method for service: method itself, or
// OtherMethod.
func (l *RPCMethods) Method(service, method string) string {
	return l.Admit(service, method, OtherMethod)
}

// ValidGRPCMethod reports whether m has the form of a gRPC method name,
// "package.Service/Method": two non-empty parts of identifier characters
// and dots, at most 256 bytes.
func ValidGRPCMethod(m string) bool {
	if len(m) > 256 {
		return false
	}
	slash := -1
	for i := 0; i < len(m); i++ {
		switch c := m[i]; {
		case c == '/':
			if slash >= 0 || i == 0 {
				return false
			}
			slash = i
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.':
		default:
			return false
		}
	}
	return slash > 0 && slash < len(m)-1
}

// method decides rpc.method and rpc.method_original once per call, so a
// span and its metric agree and the limit is consulted once.
func (r *RPC) method(conn *protocols.ConnInfo, methods *RPCMethods) (shown, original string) {
	if !r.decided {
		r.decided = true
		switch {
		case r.Method == "":
		case r.Unrecognized || !ValidGRPCMethod(r.Method):
			r.shown, r.original = OtherMethod, r.Method
		case methods == nil:
			r.shown = r.Method
		default:
			r.shown = methods.Method(conn.Service, r.Method)
			if r.shown != r.Method {
				r.original = r.Method
			}
		}
	}
	return r.shown, r.original
}

// server is server.address and server.port: what the client named the
// server, else the server's end of the connection.
func (r *RPC) server(x *protocols.Exchange, conn *protocols.ConnInfo) (string, int) {
	end, text := conn.Remote, conn.RemoteIP
	if x.Role == protocols.RoleServer {
		end, text = conn.Local, conn.LocalIP
	}
	if r.ServerAddress != "" {
		port := r.ServerPort
		if port == 0 {
			port = int(end.Port())
		}
		return r.ServerAddress, port
	}
	if !end.IsValid() {
		return "", 0
	}
	return ipText(text, end), int(end.Port())
}

// Fill writes the span of call x: name, status and attributes. methods
// bounds rpc.method; nil keeps every well-formed method.
func (r *RPC) Fill(span ptrace.Span, x *protocols.Exchange, conn *protocols.ConnInfo, methods *RPCMethods) {
	method, original := r.method(conn, methods)
	name := method
	if method == "" || method == OtherMethod {
		name = r.System
	}
	span.SetName(name)
	errorType, failed := r.outcome(x)
	attrs := span.Attributes()
	attrs.EnsureCapacity(10)
	attrs.PutStr("rpc.system.name", r.System)
	putNonEmpty(attrs, "rpc.method", method)
	putNonEmpty(attrs, "rpc.method_original", original)
	putNonEmpty(attrs, "rpc.response.status_code", r.StatusCode)
	putNonEmpty(attrs, "error.type", errorType)
	if addr, port := r.server(x, conn); addr != "" {
		attrs.PutStr("server.address", addr)
		attrs.PutInt("server.port", int64(port))
	}
	putAddr(attrs, "network.peer.address", "network.peer.port", conn.Remote, conn.RemoteIP)
	switch {
	case errorType == NoResponse && failed:
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage("no response: the connection ended first")
	case failed:
		span.Status().SetCode(ptrace.StatusCodeError)
	}
}

// Metric says which series call x counts in: the same method, status and
// error as its span.
func (r *RPC) Metric(x *protocols.Exchange, conn *protocols.ConnInfo, methods *RPCMethods) (redmetrics.Key, redmetrics.Observation, bool) {
	method, _ := r.method(conn, methods)
	errorType, _ := r.outcome(x)
	k := redmetrics.Key{Family: RPCClient}
	if x.Role == protocols.RoleServer {
		// server.address is opt-in on servers, and it is the client's to
		// choose: it is left out.
		k.Family = RPCServer
	} else {
		addr, port := r.server(x, conn)
		k.Str[rpcServerAddress] = addr
		k.Int[0] = int64(port)
	}
	k.Str[rpcSystem] = r.System
	k.Str[rpcMethod] = method
	k.Str[rpcStatus] = r.StatusCode
	k.Str[rpcErrorType] = errorType
	return k, redmetrics.Observation{Seconds(x)}, true
}

func rpcMetricAttributes(k *redmetrics.Key, attrs pcommon.Map) {
	attrs.PutStr("rpc.system.name", k.Str[rpcSystem])
	putNonEmpty(attrs, "rpc.method", k.Str[rpcMethod])
	putNonEmpty(attrs, "rpc.response.status_code", k.Str[rpcStatus])
	putNonEmpty(attrs, "error.type", k.Str[rpcErrorType])
	if k.Str[rpcServerAddress] != "" {
		attrs.PutStr("server.address", k.Str[rpcServerAddress])
		attrs.PutInt("server.port", k.Int[0])
	}
}

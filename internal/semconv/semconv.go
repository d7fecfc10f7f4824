// Package semconv turns protocol records into what the OpenTelemetry
// semantic conventions (v1.44) call them: span names, attributes, status,
// and the metric series they count in. Each kind of exchange (HTTP, database,
// RPC) has one definition here, used by both spans and metrics, so the two
// never disagree on a method, a route or an error.
package semconv // import "github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"

import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"

// NoResponse is the error.type of an exchange whose connection ended
// before the response came.
const NoResponse = "no_response"

// Seconds is the duration of an exchange: from the request's first byte to
// the response's last (or the request's last, without a response).
func Seconds(x *protocols.Exchange) float64 {
	return float64(x.End()-x.RequestStart) / 1e9
}

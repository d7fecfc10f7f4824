package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import "strings"

// propagationModes reads context_propagation: "none", or a comma-separated
// set of "headers" (a traceparent header in the first HTTP/1.x request of
// a connection) and "tcp" (the context in a TCP header option of every
// request). ok is false for anything else.
func propagationModes(v string) (headers, tcp, ok bool) {
	if v == "none" {
		return false, false, true
	}
	for _, m := range strings.Split(v, ",") {
		switch strings.TrimSpace(m) {
		case "headers":
			if headers {
				return false, false, false
			}
			headers = true
		case "tcp":
			if tcp {
				return false, false, false
			}
			tcp = true
		default:
			return false, false, false
		}
	}
	return headers, tcp, true
}

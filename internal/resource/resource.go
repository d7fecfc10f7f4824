// Package resource describes a watched process as an OpenTelemetry resource.
package resource // import "github.com/otelcol-ebpf/ebpfreceiver/internal/resource"

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
)

// InstanceID is the service.instance.id of process pid on host: "host:pid",
// the form the pidfilter processor matches on.
func InstanceID(host string, pid int) string {
	return host + ":" + strconv.Itoa(pid)
}

// Fill sets the resource attributes of process p, running on host.
func Fill(attrs pcommon.Map, host string, p discovery.Process) {
	attrs.EnsureCapacity(16) // and the container's and pod's, most often
	attrs.PutStr("service.name", p.ServiceName)
	attrs.PutStr("service.instance.id", InstanceID(host, p.Pid))
	attrs.PutInt("process.pid", int64(p.Pid))
	attrs.PutStr("process.executable.name", p.ExeName)
	if p.ExePath != "" {
		attrs.PutStr("process.executable.path", p.ExePath)
	}
	attrs.PutStr("host.name", host)
	attrs.PutStr("os.type", "linux")
	attrs.PutStr("telemetry.sdk.name", "otelcol-ebpf")
	attrs.PutStr("telemetry.distro.name", "otelcol-ebpf")
}

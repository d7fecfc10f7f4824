// Package pidfilterprocessor keeps or drops telemetry by the process it
// came from: whole resources are matched on their service.instance.id
// ("host:pid"), or on process.pid and host.name; or by the Kubernetes pod
// (k8s.namespace.name, k8s.pod.name) or the container (container.id) it
// came from.
//
//go:generate go tool mdatagen metadata.yaml
package pidfilterprocessor // import "github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor"

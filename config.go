package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/known"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// Config is the configuration of the ebpf receiver.
type Config struct {
	// Discovery selects the processes whose traffic is watched. Selectors are
	// OR-ed; when none is set, every process with a listening TCP socket is
	// selected (the collector itself never is).
	Discovery DiscoveryConfig `mapstructure:"discovery"`
	// Protocols lists the protocols parsed (see README); empty means every
	// protocol the receiver knows.
	Protocols []string `mapstructure:"protocols"`
	// Routes bounds the cardinality of the http.route attribute.
	Routes RoutesConfig `mapstructure:"routes"`
	// HTTP holds options about what is recorded from HTTP messages.
	HTTP HTTPConfig `mapstructure:"http"`
	// DB holds options about what is recorded of database calls.
	DB DBConfig `mapstructure:"db"`
	// Metrics holds options of the RED metrics.
	Metrics MetricsConfig `mapstructure:"metrics"`
	// PrintSpans, when "text", also prints every span as one line on
	// standard output, in the format of the trace_printer of the tools this
	// product grew from (see README).
	PrintSpans string `mapstructure:"print_spans"`
	// RingBufferSize is the size in bytes of the kernel ring buffer that
	// carries events to user space: a power of two, at least 4096.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// ContextPropagation, when "headers", makes the first plaintext
	// HTTP/1.x request of each connection selected processes open carry a
	// W3C traceparent header with its client span's context, so the next
	// hop (a receiver on another node, an SDK) continues the trace. "none"
	// (the default) never changes a byte.
	// "tcp" carries the context of every HTTP/1.x and HTTP/2 (gRPC)
	// request of those connections in a TCP header option instead, for a
	// receiver on the next node, without changing a byte of the stream;
	// "headers,tcp" does both (config_propagation.go).
	ContextPropagation string `mapstructure:"context_propagation"`
	// ProcRoot is where the host's /proc is: /proc for a collector in the
	// host's pid namespace (a DaemonSet with hostPID), or where an agent
	// mounts the host's /proc.
	ProcRoot string `mapstructure:"proc_root"`
	// Kubernetes enriches the resources of processes in pods with what the
	// API says of their pods.
	Kubernetes KubernetesConfig `mapstructure:"kubernetes"`
	// Network counts the flows of the node's interfaces (config_network.go).
	Network NetworkConfig `mapstructure:"network"`
	// TLS, when true (the default), takes the plaintext of watched
	// processes' TLS connections where their TLS library hands it over
	// (OpenSSL, BoringSSL, Go's crypto/tls), with uprobes, and parses it as
	// the connection's bytes. False traces TLS at the socket level only:
	// connections and their ciphertext, no spans.
	TLS bool `mapstructure:"tls"`
	// Hooks chooses how the kernel sees reads and writes (config_hooks.go):
	// "auto" (the default) takes the socket hooks (fentry) where the kernel
	// has them, else the syscall tracepoints; "syscalls" or "socket" force
	// one. The spans and metrics are the same.
	Hooks string `mapstructure:"hooks"`
	// Sampler chooses the traces that become spans (config_sampler.go);
	// metrics count every request.
	Sampler SamplerConfig `mapstructure:"sampler"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DiscoveryConfig selects processes; its selectors are OR-ed together.
type DiscoveryConfig struct {
	// OpenPorts is a list of ports and port ranges ("80,8000-9000"): processes
	// listening on, or connecting to, one of them are selected.
	OpenPorts string `mapstructure:"open_ports"`
	// ExePath is a regular expression matched against the executable's path.
	ExePath string `mapstructure:"exe_path"`
	// Pids are process ids selected as they are.
	Pids []int `mapstructure:"pids"`
	// PollInterval is how often /proc is scanned for new listeners and
	// executables. Processes that start later are picked up within it.
	PollInterval time.Duration `mapstructure:"poll_interval"`
}

// RoutesConfig says how a request path becomes the http.route attribute.
type RoutesConfig struct {
	// Patterns such as "/users/{id}" or "/static/*"; the first match wins.
	Patterns []string `mapstructure:"patterns"`
	// Unmatched is what a path that matches no pattern becomes: "heuristic"
	// (numeric, hex and UUID-like segments become "*"), "path" (the path as
	// it is) or "wildcard" (the route "/**").
	Unmatched string `mapstructure:"unmatched"`
	// MaxPerService bounds the distinct routes of one service; requests of
	// later ones get the route "_OTHER", and are counted. Scanners send
	// made-up paths: without a bound each would make a metric series.
	MaxPerService int `mapstructure:"max_per_service"`
}

// KubernetesConfig is the opt-in use of the Kubernetes API.
type KubernetesConfig struct {
	// Enabled watches this node's pods (node named by $K8S_NODE_NAME) with
	// the in-cluster service account, and adds the container name, the
	// owners and the service.name the conventions derive for Kubernetes.
	Enabled bool `mapstructure:"enabled"`
	// ServiceNameFromLabels lets the app.kubernetes.io/instance and /name
	// labels name a pod's service, after its
	// resource.opentelemetry.io/service.name annotation and before its
	// owner's name.
	ServiceNameFromLabels bool `mapstructure:"service_name_from_labels"`
}

// DBConfig holds what is recorded of database calls.
type DBConfig struct {
	// QueryText records the statement in db.query.text, every literal
	// replaced by "?".
	QueryText bool `mapstructure:"query_text"`
}

// HTTPConfig holds what is recorded from HTTP messages.
type HTTPConfig struct {
	// RecordQuery records the query string in url.query when true.
	RecordQuery bool `mapstructure:"record_query"`
}

// MetricsConfig holds options of the RED metrics.
type MetricsConfig struct {
	// Interval is how often the cumulative histograms are emitted.
	Interval time.Duration `mapstructure:"interval"`
}

var _ confmap.Validator = (*Config)(nil)

// validateProtocols names every protocol the receiver does not know, and
// every one listed twice.
func validateProtocols(names []string) []error {
	var errs []error
	known := known.Names()
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case !slices.Contains(known, n):
			errs = append(errs, fmt.Errorf("protocols: %q is not a protocol the receiver knows (%s)", n, strings.Join(known, ", ")))
		case seen[n]:
			errs = append(errs, fmt.Errorf("protocols: %q is listed twice", n))
		}
		seen[n] = true
	}
	return errs
}

// Validate reports every problem of the configuration at once.
func (cfg *Config) Validate() error {
	var errs []error
	if _, err := discovery.ParsePorts(cfg.Discovery.OpenPorts); err != nil {
		errs = append(errs, fmt.Errorf("discovery.open_ports: %w", err))
	}
	if cfg.Discovery.ExePath != "" {
		if _, err := regexp.Compile(cfg.Discovery.ExePath); err != nil {
			errs = append(errs, fmt.Errorf("discovery.exe_path %q: %w", cfg.Discovery.ExePath, err))
		}
	}
	for _, pid := range cfg.Discovery.Pids {
		if pid <= 0 {
			errs = append(errs, fmt.Errorf("discovery.pids: %d is not a process id (must be > 0)", pid))
		}
	}
	if cfg.Discovery.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("discovery.poll_interval: %v must be positive", cfg.Discovery.PollInterval))
	}
	if _, err := routes.New(cfg.Routes.Patterns, cfg.Routes.Unmatched); err != nil {
		errs = append(errs, fmt.Errorf("routes: %w", err))
	}
	if cfg.Routes.MaxPerService <= 0 {
		errs = append(errs, fmt.Errorf("routes.max_per_service: %d must be positive", cfg.Routes.MaxPerService))
	}
	errs = append(errs, validateProtocols(cfg.Protocols)...)
	if cfg.Metrics.Interval <= 0 {
		errs = append(errs, fmt.Errorf("metrics.interval: %v must be positive", cfg.Metrics.Interval))
	}
	if cfg.PrintSpans != "" && cfg.PrintSpans != "text" {
		errs = append(errs, fmt.Errorf("print_spans: %q must be \"text\" or empty", cfg.PrintSpans))
	}
	if _, _, ok := propagationModes(cfg.ContextPropagation); !ok {
		errs = append(errs, fmt.Errorf("context_propagation: %q must be \"none\" or \"headers\", or \"tcp\" or \"headers,tcp\" (context in a TCP header option)", cfg.ContextPropagation))
	}
	errs = append(errs, cfg.Network.validate()...)
	if err := validateHooks(cfg.Hooks); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.Sampler.validate()...)
	if !filepath.IsAbs(cfg.ProcRoot) {
		errs = append(errs, fmt.Errorf("proc_root: %q must be an absolute path", cfg.ProcRoot))
	}
	if n := cfg.RingBufferSize; n < 4096 || n&(n-1) != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_size: %d must be a power of two of at least 4096", n))
	}
	return errors.Join(errs...)
}

package pidfilterprocessor // import "github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/confmap"
)

// What to do with resources that name no process.
const (
	MissingKeep = "keep"
	MissingDrop = "drop"
)

// Config is the configuration of the pidfilter processor.
type Config struct {
	// Include keeps only resources of these processes, pods and containers:
	// "host:pid", "*:pid" or "pid" (any host); "pod:namespace/name" or
	// "pod:namespace/*" (k8s.namespace.name and k8s.pod.name);
	// "container:id" (container.id, or its first 12 or more digits). Empty,
	// with no PidFiles, keeps everything.
	Include []string `mapstructure:"include"`
	// Exclude then drops resources of these (same forms).
	Exclude []string `mapstructure:"exclude"`
	// PidFiles hold one pid each; their pids are added to Include (any
	// host) and follow the files as they change.
	PidFiles []string `mapstructure:"pid_files"`
	// PidFilesPollInterval is how often the pid files are read again.
	PidFilesPollInterval time.Duration `mapstructure:"pid_files_poll_interval"`
	// Missing says what becomes of resources that name nothing the entries
	// can match (no process, nor, when entries name pods or containers, a
	// pod or a container): "keep" or "drop".
	Missing string `mapstructure:"missing"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate reports every bad entry at once.
func (cfg *Config) Validate() error {
	var errs []error
	for _, list := range []struct {
		name    string
		entries []string
	}{{"include", cfg.Include}, {"exclude", cfg.Exclude}} {
		for _, e := range list.entries {
			if _, err := parseEntry(e); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", list.name, err))
			}
		}
	}
	for i, f := range cfg.PidFiles {
		if f == "" {
			errs = append(errs, fmt.Errorf("pid_files[%d]: empty path", i))
		}
	}
	if len(cfg.PidFiles) > 0 && cfg.PidFilesPollInterval <= 0 {
		errs = append(errs, fmt.Errorf("pid_files_poll_interval: %v must be positive", cfg.PidFilesPollInterval))
	}
	if cfg.Missing != MissingKeep && cfg.Missing != MissingDrop {
		errs = append(errs, fmt.Errorf("missing: %q must be %q or %q", cfg.Missing, MissingKeep, MissingDrop))
	}
	return errors.Join(errs...)
}

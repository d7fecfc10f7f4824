// Command render writes the plain manifests of deploy/manifests from the
// chart, for users without helm. Run it from the repository root as
// `go -C deploy run ./render` after changing the chart; TestManifestsUpToDate
// fails until then.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/otelcol-ebpf/ebpfreceiver/deploy/internal/helmrender"
)

func main() {
	if err := run("."); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

// run renders every target under deployDir and writes the files that changed.
func run(deployDir string) error {
	for _, t := range helmrender.Targets {
		b, err := t.Render(deployDir)
		if err != nil {
			return err
		}
		path := filepath.Join(deployDir, t.File)
		if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
			fmt.Printf("%s: unchanged\n", t.File)
			continue
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Printf("%s: written\n", t.File)
	}
	return nil
}

// Package helmrender renders and lints the otelcol-ebpf chart through Helm's
// own Go packages, exactly as `helm template` and `helm lint` would, so that
// the committed plain manifests and the tests need no helm binary.
package helmrender // import "github.com/otelcol-ebpf/ebpfreceiver/deploy/internal/helmrender"

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// Paths relative to the deploy directory.
const (
	ChartDir    = "helm/otelcol-ebpf"
	ExamplesDir = "helm/examples"
)

// Release is the release name and namespace the plain manifests are rendered
// for: object names come out as "otelcol-ebpf-agent", "otelcol-ebpf-gateway".
const (
	ReleaseName = "otelcol-ebpf"
	Namespace   = "otelcol-ebpf"
)

// KubeVersion is the Kubernetes release the chart is rendered and linted
// for, that of the k8s.io/api types the tests decode into. Helm's default
// comes from the client-go it was built with, which a test binary may not
// record (it then falls back to 1.20), so it is set here.
const KubeVersion = "v1.37.0"

// Target is one committed plain manifest and the values it is rendered with.
type Target struct {
	File        string   // relative to the deploy directory
	ValuesFiles []string // relative to the deploy directory, applied in order
}

// Targets are the files under manifests/ that `go -C deploy run ./render`
// writes and TestManifestsUpToDate compares.
var Targets = []Target{
	{File: "manifests/agent.yaml"},
	{File: "manifests/agent-gateway.yaml", ValuesFiles: []string{ExamplesDir + "/gateway.yaml"}},
}

// Result is what one rendering gives.
type Result struct {
	Manifest string // every object, as `helm template` prints them
	Notes    string // NOTES.txt, rendered
}

// Values reads values files (as `helm -f`, later files win) and merges
// overrides over them (as `--set`; nested maps merge).
func Values(files []string, overrides map[string]any) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading values: %w", err)
		}
		v, err := loader.LoadValues(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parsing values file %s: %w", f, err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	return loader.MergeMaps(vals, overrides), nil
}

// Render renders the chart in chartDir with vals (merged over the chart's
// values.yaml) for release ReleaseName in Namespace, client side only.
func Render(chartDir string, vals map[string]any) (Result, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return Result{}, fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient // never contacts a cluster
	install.ReleaseName = ReleaseName
	install.Namespace = Namespace
	install.Replace = true
	install.KubeVersion, err = common.ParseKubeVersion(KubeVersion)
	if err != nil {
		return Result{}, fmt.Errorf("parsing %s: %w", KubeVersion, err)
	}
	rel, err := install.Run(ch, vals)
	if err != nil {
		return Result{}, fmt.Errorf("rendering chart %s: %w", chartDir, err)
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return Result{}, fmt.Errorf("rendering chart %s: unexpected release type %T", chartDir, rel)
	}
	return Result{Manifest: strings.TrimSpace(r.Manifest) + "\n", Notes: r.Info.Notes}, nil
}

// Lint runs every `helm lint` rule on the chart with vals and returns the
// messages, of every severity.
func Lint(chartDir string, vals map[string]any) []support.Message {
	kv, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		panic(err) // a constant
	}
	return lint.RunAll(chartDir, vals, Namespace, lint.WithKubeVersion(kv)).Messages
}

// Header heads every committed manifest.
func (t Target) Header() string {
	values := "the chart's defaults"
	if len(t.ValuesFiles) > 0 {
		values += " and deploy/" + strings.Join(t.ValuesFiles, ", deploy/")
	}
	return fmt.Sprintf(`# Generated from deploy/%[1]s with %[2]s
# (release %[3]q, namespace %[4]q) by `+"`go -C deploy run ./render`"+`. Do not edit:
# change the chart or the values and run it again.
#
# The agent needs the privileged Pod Security level (hostPID, host paths,
# capabilities); set the image to your build first.
#
#   kubectl create namespace %[4]s
#   kubectl label namespace %[4]s pod-security.kubernetes.io/enforce=privileged
#   kubectl apply -f %[5]s
`, ChartDir, values, ReleaseName, Namespace, filepath.Base(t.File))
}

// Render renders the target's file content; deployDir is the deploy directory.
func (t Target) Render(deployDir string) ([]byte, error) {
	files := make([]string, len(t.ValuesFiles))
	for i, f := range t.ValuesFiles {
		files[i] = filepath.Join(deployDir, f)
	}
	vals, err := Values(files, nil)
	if err != nil {
		return nil, err
	}
	res, err := Render(filepath.Join(deployDir, ChartDir), vals)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.File, err)
	}
	return []byte(t.Header() + res.Manifest), nil
}

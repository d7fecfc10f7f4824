package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-ebpf/ebpfreceiver/deploy/internal/helmrender"
)

// The distribution's sources, read to know which components and receiver
// settings exist. Both default to the checkout this module sits in.
var (
	builderConfig = flag.String("builder-config", "../builder-config.yaml", "the ocb manifest of the distribution")
	receiverSrc   = flag.String("receiver-src", "..", "the directory of the ebpf receiver's Config type")
)

// objects holds every object of one rendering, decoded strictly into its
// k8s.io/api type.
type objects struct {
	DaemonSets          map[string]*appsv1.DaemonSet
	Deployments         map[string]*appsv1.Deployment
	Services            map[string]*corev1.Service
	ConfigMaps          map[string]*corev1.ConfigMap
	ServiceAccounts     map[string]*corev1.ServiceAccount
	ClusterRoles        map[string]*rbacv1.ClusterRole
	ClusterRoleBindings map[string]*rbacv1.ClusterRoleBinding
	Count               int
}

// render renders the chart with the example values files (by name, from
// helm/examples) and overrides, failing the test on any error.
func render(t *testing.T, examples []string, overrides map[string]any) (helmrender.Result, *objects) {
	t.Helper()
	res, err := renderErr(examples, overrides)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll([]byte(res.Manifest))
	if err != nil {
		t.Fatalf("decoding the rendered objects: %v", err)
	}
	return res, objs
}

func renderErr(examples []string, overrides map[string]any) (helmrender.Result, error) {
	vals, err := values(examples, overrides)
	if err != nil {
		return helmrender.Result{}, err
	}
	return helmrender.Render(helmrender.ChartDir, vals)
}

func values(examples []string, overrides map[string]any) (map[string]any, error) {
	files := make([]string, len(examples))
	for i, e := range examples {
		files[i] = filepath.Join(helmrender.ExamplesDir, e)
	}
	return helmrender.Values(files, overrides)
}

// decodeAll splits a YAML stream and decodes each object into the type of
// its kind; a field the type does not have is an error, and so is a kind the
// chart is not meant to produce.
func decodeAll(stream []byte) (*objects, error) {
	o := &objects{
		DaemonSets: map[string]*appsv1.DaemonSet{}, Deployments: map[string]*appsv1.Deployment{},
		Services: map[string]*corev1.Service{}, ConfigMaps: map[string]*corev1.ConfigMap{},
		ServiceAccounts: map[string]*corev1.ServiceAccount{}, ClusterRoles: map[string]*rbacv1.ClusterRole{},
		ClusterRoleBindings: map[string]*rbacv1.ClusterRoleBinding{},
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return o, nil
		}
		if err != nil {
			return nil, fmt.Errorf("splitting the stream: %w", err)
		}
		if err := o.add(doc); err != nil {
			return nil, err
		}
	}
}

func (o *objects) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("reading the kind of %q: %w", firstLine(doc), err)
	}
	if tm.Kind == "" && len(bytes.TrimSpace(stripComments(doc))) == 0 {
		return nil // a document of comments only
	}
	var err error
	var name string
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "apps/v1 DaemonSet":
		name, err = decodeInto(doc, o.DaemonSets)
	case "apps/v1 Deployment":
		name, err = decodeInto(doc, o.Deployments)
	case "v1 Service":
		name, err = decodeInto(doc, o.Services)
	case "v1 ConfigMap":
		name, err = decodeInto(doc, o.ConfigMaps)
	case "v1 ServiceAccount":
		name, err = decodeInto(doc, o.ServiceAccounts)
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		name, err = decodeInto(doc, o.ClusterRoles)
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		name, err = decodeInto(doc, o.ClusterRoleBindings)
	default:
		return fmt.Errorf("unexpected object %q", gvk)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", tm.Kind, name, err)
	}
	o.Count++
	return nil
}

// decodeInto decodes doc strictly into a new T and files it by name.
func decodeInto[T any, PT interface {
	*T
	GetName() string
}](doc []byte, into map[string]PT) (string, error) {
	obj := PT(new(T))
	if err := strictDecode(doc, obj); err != nil {
		return "", err
	}
	name := obj.GetName()
	if _, dup := into[name]; dup {
		return name, errors.New("rendered twice")
	}
	into[name] = obj
	return name, nil
}

// strictDecode decodes YAML the way the API server's strict field validation
// does: field names match case-sensitively, and an unknown or duplicate field
// is an error. (sigs.k8s.io/yaml's UnmarshalStrict would accept "hostPid"
// for "hostPID": encoding/json matches names case-insensitively.)
func strictDecode(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("strict decoding: %w", err)
	}
	strict, err := k8sjson.UnmarshalStrict(j, obj)
	if err != nil {
		return fmt.Errorf("strict decoding: %w", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strict...))
	}
	return nil
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out.WriteString(line + "\n")
		}
	}
	return out.Bytes()
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// collectorConfig parses the collector configuration held in a ConfigMap.
func collectorConfig(t *testing.T, cm *corev1.ConfigMap) map[string]any {
	t.Helper()
	raw, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yaml", cm.Name)
	}
	var cfg map[string]any
	if err := strictDecode([]byte(raw), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: config.yaml is not YAML: %v", cm.Name, err)
	}
	return cfg
}

// at walks nested maps by keys; it fails the test when one is missing.
func at(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s is %T, not a map", strings.Join(keys[:i], "."), v)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("no %s", strings.Join(keys[:i+1], "."))
		}
	}
	return v
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is %T, not a list", v, v)
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = fmt.Sprint(e)
	}
	return out
}

// num reads a YAML integer (int64 after strictDecode).
func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(int64)
	if !ok {
		t.Fatalf("%v (%T) is not an integer", v, v)
	}
	return n
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

// Components the distribution has, by kind ("receivers", ...) and type, read
// from the ocb manifest. The type is the one the component registers (its
// metadata.yaml): the package name less its kind, with the exceptions of
// irregularTypes. Deprecated aliases are not listed: the chart writes the
// current types.
type components map[string]map[string]bool

// irregularTypes are the v0.161.0 component types that are not their package
// name less the kind suffix.
var irregularTypes = map[string]string{
	"memorylimiterprocessor": "memory_limiter",
	"tailsamplingprocessor":  "tail_sampling",
	"healthcheckextension":   "health_check",
	"otlpexporter":           "otlp_grpc",      // alias "otlp" deprecated
	"otlphttpexporter":       "otlp_http",      // alias "otlphttp" deprecated
	"loadbalancingexporter":  "load_balancing", // alias "loadbalancing" deprecated
	"ebpfreceiver":           "ebpf",
}

func distributionComponents(t *testing.T) components {
	t.Helper()
	b, err := os.ReadFile(*builderConfig)
	if err != nil {
		t.Fatalf("reading the distribution's manifest (-builder-config): %v", err)
	}
	type module struct {
		GoMod  string `json:"gomod"`
		Import string `json:"import"`
	}
	var manifest struct {
		Receivers  []module `json:"receivers"`
		Processors []module `json:"processors"`
		Exporters  []module `json:"exporters"`
		Extensions []module `json:"extensions"`
		Connectors []module `json:"connectors"`
	}
	if err := yaml.Unmarshal(b, &manifest); err != nil {
		t.Fatalf("parsing %s: %v", *builderConfig, err)
	}
	out := components{}
	for kind, mods := range map[string][]module{
		"receivers": manifest.Receivers, "processors": manifest.Processors, "exporters": manifest.Exporters,
		"extensions": manifest.Extensions, "connectors": manifest.Connectors,
	} {
		out[kind] = map[string]bool{}
		for _, m := range mods {
			pkg := m.Import
			if pkg == "" {
				pkg, _, _ = strings.Cut(m.GoMod, " ")
			}
			base := filepath.Base(pkg)
			typ, ok := irregularTypes[base]
			if !ok {
				typ = strings.TrimSuffix(base, strings.TrimSuffix(kind, "s"))
			}
			out[kind][typ] = true
		}
	}
	return out
}

// checkComponents fails the test for every component id of cfg whose type
// the distribution lacks (extra types allowed by the caller aside), and for
// every pipeline or extension list naming an id cfg does not define.
func checkComponents(t *testing.T, cfg map[string]any, dist components, extra ...string) {
	t.Helper()
	defined := map[string]map[string]bool{}
	for _, kind := range []string{"receivers", "processors", "exporters", "extensions", "connectors"} {
		defined[kind] = map[string]bool{}
		section, _ := cfg[kind].(map[string]any)
		for _, id := range keys(section) {
			defined[kind][id] = true
			typ, _, _ := strings.Cut(id, "/")
			if !dist[kind][typ] && !contains(extra, typ) {
				t.Errorf("%s.%s: the distribution has no %s %q (%s lists %s)", kind, id, strings.TrimSuffix(kind, "s"), typ, *builderConfig, keys(dist[kind]))
			}
		}
	}
	service, _ := cfg["service"].(map[string]any)
	for _, id := range strs(t, service["extensions"]) {
		if !defined["extensions"][id] {
			t.Errorf("service.extensions names %q, which extensions does not define", id)
		}
	}
	pipelines, _ := service["pipelines"].(map[string]any)
	if len(pipelines) == 0 {
		t.Fatal("no pipeline")
	}
	for _, name := range keys(pipelines) {
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			ids, ok := pipelines[name].(map[string]any)[kind]
			if !ok {
				if kind != "processors" {
					t.Errorf("pipeline %s has no %s", name, kind)
				}
				continue
			}
			for _, id := range strs(t, ids) {
				if !defined[kind][id] {
					t.Errorf("pipeline %s names %s %q, which %s does not define", name, strings.TrimSuffix(kind, "s"), id, kind)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// receiverSettings reads the ebpf receiver's settings from its source: the
// mapstructure names of type Config's fields, and for a field whose type is a
// struct of the same package, the names inside it. A field of another
// package's type maps to nil (its keys are not checked).
type settings map[string]settings

func receiverSettings(t *testing.T) settings {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, *receiverSrc, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatalf("parsing the receiver's source (-receiver-src): %v", err)
	}
	structs := map[string]*ast.StructType{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				if ts, ok := n.(*ast.TypeSpec); ok {
					if st, ok := ts.Type.(*ast.StructType); ok {
						structs[ts.Name.Name] = st
					}
				}
				return true
			})
		}
	}
	cfg, ok := structs["Config"]
	if !ok {
		t.Fatalf("no type Config in %s", *receiverSrc)
	}
	return structSettings(cfg, structs, 0)
}

func structSettings(st *ast.StructType, structs map[string]*ast.StructType, depth int) settings {
	out := settings{}
	for _, f := range st.Fields.List {
		if f.Tag == nil {
			continue
		}
		tag, err := strconv.Unquote(f.Tag.Value)
		if err != nil {
			continue
		}
		name, opts, _ := strings.Cut(reflect.StructTag(tag).Get("mapstructure"), ",")
		var inner settings
		if id, ok := f.Type.(*ast.Ident); ok && structs[id.Name] != nil && depth < 4 {
			inner = structSettings(structs[id.Name], structs, depth+1)
		}
		if opts == "squash" {
			for k, v := range inner {
				out[k] = v
			}
			continue
		}
		if name != "" && name != "-" {
			out[name] = inner
		}
	}
	return out
}

// checkSettings fails the test for every key of cfg the receiver lacks.
func checkSettings(t *testing.T, path string, cfg map[string]any, known settings) {
	t.Helper()
	for k, v := range cfg {
		inner, ok := known[k]
		if !ok {
			t.Errorf("%s.%s: the ebpf receiver (%s) has no such setting; it has %s", path, k, *receiverSrc, keys(known))
			continue
		}
		if m, isMap := v.(map[string]any); isMap && inner != nil {
			checkSettings(t, path+"."+k, m, inner)
		}
	}
}

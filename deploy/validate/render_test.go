package validate

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository's root, seen from this package's directory (go test runs a
// package's tests in its own directory).
const repoRoot = "../.."

// kubeDir holds the kustomizations.
var kubeDir = filepath.Join(repoRoot, "deploy", "kubernetes")

// proxyImage is the proxy's image name, as the base's `images:` entry names it.
const proxyImage = "ghcr.io/enrichproxy/enrichproxy"

// rendering is one kustomization's output, every object decoded strictly into its type.
type rendering struct {
	dir             string // relative to deploy/kubernetes
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	networkPolicies []*networkingv1.NetworkPolicy
	pdbs            []*policyv1.PodDisruptionBudget
	podMonitors     []*monitoringv1.PodMonitor
	serviceMonitors []*monitoringv1.ServiceMonitor
}

// add decodes one rendered object by its apiVersion and kind. A kind the validator has no
// type for is an error rather than a pass: every object must be checked.
func (r *rendering) add(apiVersion, kind string, raw []byte) error {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return decodeInto(raw, &r.deployments)
	case "v1 Service":
		return decodeInto(raw, &r.services)
	case "v1 ConfigMap":
		return decodeInto(raw, &r.configMaps)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(raw, &r.networkPolicies)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(raw, &r.pdbs)
	case "monitoring.coreos.com/v1 PodMonitor":
		return decodeInto(raw, &r.podMonitors)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return decodeInto(raw, &r.serviceMonitors)
	case "v1 Secret":
		return errors.New("a Secret is rendered: secrets are created out of band (secret.example.yaml), never kept in a kustomization")
	}
	return fmt.Errorf("no Go type known to the validator for apiVersion %q kind %q: fix the apiVersion, or add the type to rendering.add", apiVersion, kind)
}

func decodeInto[T any](raw []byte, list *[]*T) error {
	v := new(T)
	if err := decodeStrict(raw, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// decodeStrict decodes JSON into v as the API server's strict field validation does
// (sigs.k8s.io/json): field names are case-sensitive, and unknown or duplicate fields are
// errors. (encoding/json, and so sigs.k8s.io/yaml.UnmarshalStrict, match names without
// regard to case: readOnlyRootFileSystem would pass there as readOnlyRootFilesystem.)
func decodeStrict(raw []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(raw, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// render builds the kustomization in dir (relative to deploy/kubernetes) with the kustomize
// Go API, as `kubectl kustomize` would.
func render(dir string) (*rendering, error) {
	abs, err := filepath.Abs(filepath.Join(kubeDir, dir))
	if err != nil {
		return nil, err
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	r := &rendering{dir: dir}
	for _, res := range m.Resources() {
		raw, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", dir, res.GetKind(), res.GetName(), err)
		}
		if err := r.add(res.GetApiVersion(), res.GetKind(), raw); err != nil {
			return nil, fmt.Errorf("%s: %s %q: %w", dir, res.GetKind(), res.GetName(), err)
		}
	}
	return r, nil
}

// kustomizationDirs finds every kustomization under deploy/kubernetes.
func kustomizationDirs() ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(kubeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch d.Name() {
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
			rel, err := filepath.Rel(kubeDir, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(dirs)
	return dirs, err
}

var (
	renderOnce sync.Once
	renderings map[string]*rendering
	renderErrs map[string]error // by directory; "" for the walk itself
)

func renderEverything() {
	renderings, renderErrs = map[string]*rendering{}, map[string]error{}
	dirs, err := kustomizationDirs()
	if err != nil {
		renderErrs[""] = err
	}
	for _, dir := range dirs {
		if r, err := render(dir); err != nil {
			renderErrs[dir] = err
		} else {
			renderings[dir] = r
		}
	}
}

// renderAll renders every kustomization once per test binary and returns those that
// rendered; TestEveryKustomizationRendersStrictly reports the others.
func renderAll(t *testing.T) map[string]*rendering {
	t.Helper()
	renderOnce.Do(renderEverything)
	return renderings
}

// rendered returns one kustomization's rendering, failing when it did not render.
func rendered(t *testing.T, dir string) *rendering {
	t.Helper()
	renderOnce.Do(renderEverything)
	if err, ok := renderErrs[dir]; ok {
		t.Fatal(err)
	}
	r, ok := renderings[dir]
	if !ok {
		t.Fatalf("no kustomization at deploy/kubernetes/%s", dir)
	}
	return r
}

// exampleSecrets reads every secret.example.yaml under deploy/kubernetes, strictly, by name.
func exampleSecrets(t *testing.T) map[string]*corev1.Secret {
	t.Helper()
	out := map[string]*corev1.Secret{}
	err := filepath.WalkDir(kubeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "secret.example.yaml" {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		js, err := yaml.YAMLToJSONStrict(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		s := new(corev1.Secret)
		if err := decodeStrict(js, s); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if s.APIVersion != "v1" || s.Kind != "Secret" {
			return fmt.Errorf("%s: want apiVersion v1 kind Secret, got %s %s", path, s.APIVersion, s.Kind)
		}
		if _, dup := out[s.Name]; dup {
			return fmt.Errorf("%s: Secret %q is also defined by another secret.example.yaml", path, s.Name)
		}
		out[s.Name] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// secretKeys lists a Secret's keys, from data and stringData.
func secretKeys(s *corev1.Secret) map[string]string {
	keys := map[string]string{}
	for k, v := range s.Data {
		keys[k] = string(v)
	}
	for k, v := range s.StringData {
		keys[k] = v
	}
	return keys
}

// proxyPod is the proxy container of one rendered Deployment.
type proxyPod struct {
	deployment *appsv1.Deployment
	container  *corev1.Container
	init       bool // listed in initContainers
}

func (p proxyPod) String() string {
	where := "containers"
	if p.init {
		where = "initContainers"
	}
	return fmt.Sprintf("Deployment %s, %s[%s]", p.deployment.Name, where, p.container.Name)
}

// isProxyImage tells whether image is the enrichproxy image (any tag or digest).
func isProxyImage(image string) bool {
	return strings.HasPrefix(image, proxyImage+":") || strings.HasPrefix(image, proxyImage+"@") || image == proxyImage
}

// proxyPods finds every container running the proxy's image.
func (r *rendering) proxyPods() []proxyPod {
	var out []proxyPod
	for _, d := range r.deployments {
		spec := &d.Spec.Template.Spec
		for i := range spec.InitContainers {
			if isProxyImage(spec.InitContainers[i].Image) {
				out = append(out, proxyPod{d, &spec.InitContainers[i], true})
			}
		}
		for i := range spec.Containers {
			if isProxyImage(spec.Containers[i].Image) {
				out = append(out, proxyPod{d, &spec.Containers[i], false})
			}
		}
	}
	return out
}

// onlyProxyPod returns the one proxy container the kustomization must have.
// eachProxyPod runs check on the one proxy pod of every kustomization, as a subtest
// named after it, with the example secrets.
func eachProxyPod(t *testing.T, check func(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret)) {
	t.Helper()
	all := renderAll(t)
	secrets := exampleSecrets(t)
	for _, dir := range slices.Sorted(maps.Keys(all)) {
		t.Run(dir, func(t *testing.T) {
			r := all[dir]
			check(t, r, r.onlyProxyPod(t), secrets)
		})
	}
}

func (r *rendering) onlyProxyPod(t *testing.T) proxyPod {
	t.Helper()
	pods := r.proxyPods()
	if len(pods) != 1 {
		t.Fatalf("%s: want exactly one container with image %s, got %d: %v", r.dir, proxyImage, len(pods), pods)
	}
	return pods[0]
}

func (r *rendering) configMap(name string) *corev1.ConfigMap {
	for _, cm := range r.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

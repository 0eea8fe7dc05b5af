package validate

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Helpers to read a rendered pod the way the kubelet and the proxy would.

// envByName indexes a container's environment.
func envByName(c *corev1.Container) map[string]corev1.EnvVar {
	out := make(map[string]corev1.EnvVar, len(c.Env))
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// literal is an env var's literal value ("" when unset or from valueFrom).
func literal(env map[string]corev1.EnvVar, name string) string {
	return env[name].Value
}

// containerPort finds a container's port by name.
func containerPort(c *corev1.Container, name string) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// resolvePort resolves a probe's or Service's port (a name or a number) against a
// container's declared ports.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (corev1.ContainerPort, bool) {
	if port.Type == intstr.String {
		return containerPort(c, port.StrVal)
	}
	for _, p := range c.Ports {
		if p.ContainerPort == port.IntVal {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// listenPort is the port of a host:port listen address.
func listenPort(addr string) (host string, port int32, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return h, int32(n), nil
}

// proxyDuration parses a duration as the proxy does: a Go duration or bare seconds.
func proxyDuration(v string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

// selects tells whether a label selector selects the given labels (an empty selector
// selects everything, as in Kubernetes).
func selects(sel *metav1.LabelSelector, lbls map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(lbls)), nil
}

// mount is one volume mounted in the proxy container, with the files it would show.
type mount struct {
	path   string // mountPath in the container
	kind   string // "configMap", "secret" or the volume's other kind
	source string // ConfigMap or Secret name
	files  map[string]string
}

// proxyMounts lists the proxy container's mounts; ConfigMap files come from the rendering,
// Secret files from the secret.example.yaml that defines that Secret. Problems (a mount of
// a missing volume, a ConfigMap not rendered, a Secret no example defines) are test errors.
func proxyMounts(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret) []mount {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range p.deployment.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	var out []mount
	for _, vm := range p.container.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Errorf("%s: volumeMount %q names no volume of the pod", p, vm.Name)
			continue
		}
		if vm.SubPath != "" || vm.SubPathExpr != "" {
			t.Errorf("%s: volumeMount %q uses subPath: its files would never be updated; mount the whole volume", p, vm.Name)
		}
		m := mount{path: path.Clean(vm.MountPath), files: map[string]string{}}
		var items []corev1.KeyToPath
		var data map[string]string
		switch {
		case v.ConfigMap != nil:
			m.kind, m.source, items = "configMap", v.ConfigMap.Name, v.ConfigMap.Items
			cm := r.configMap(v.ConfigMap.Name)
			if cm == nil {
				t.Errorf("%s: volume %q: ConfigMap %q is not in the rendered output", p, v.Name, v.ConfigMap.Name)
				continue
			}
			data = cm.Data
		case v.Secret != nil:
			m.kind, m.source, items = "secret", v.Secret.SecretName, v.Secret.Items
			s, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Errorf("%s: volume %q: Secret %q has no secret.example.yaml showing its keys", p, v.Name, v.Secret.SecretName)
				continue
			}
			data = secretKeys(s)
		default:
			m.kind = "other"
		}
		if (m.kind == "configMap" || m.kind == "secret") && !vm.ReadOnly {
			t.Errorf("%s: volumeMount %q of %s %q: want readOnly: true", p, vm.Name, m.kind, m.source)
		}
		if len(items) == 0 {
			for k, val := range data {
				m.files[k] = val
			}
		}
		for _, it := range items {
			val, ok := data[it.Key]
			if !ok {
				t.Errorf("%s: volume %q: item key %q is not in %s %q", p, v.Name, it.Key, m.kind, m.source)
			}
			m.files[it.Path] = val
		}
		out = append(out, m)
	}
	return out
}

// fileAt finds the file a container path shows: the deepest mount holding it.
func fileAt(mounts []mount, p string) (m mount, rel string, ok bool) {
	p = path.Clean(p)
	best := -1
	for i, mt := range mounts {
		if strings.HasPrefix(p, mt.path+"/") && (best < 0 || len(mt.path) > len(mounts[best].path)) {
			best = i
		}
	}
	if best < 0 {
		return mount{}, "", false
	}
	m = mounts[best]
	rel = strings.TrimPrefix(p, m.path+"/")
	_, ok = m.files[rel]
	return m, rel, ok
}

// materialize writes the mounts' files into temporary directories and returns a function
// that maps a container path to the file on this machine.
func materialize(t *testing.T, mounts []mount) func(string) (string, bool) {
	t.Helper()
	dirs := map[string]string{}
	for _, m := range mounts {
		dir := t.TempDir()
		for rel, content := range m.files {
			f := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		dirs[m.path] = dir
	}
	return func(p string) (string, bool) {
		m, rel, ok := fileAt(mounts, p)
		if !ok {
			return "", false
		}
		return filepath.Join(dirs[m.path], filepath.FromSlash(rel)), true
	}
}

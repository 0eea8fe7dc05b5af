package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The real proxy, built from this repository, judges what only it can: the policy file's
// keys and values, the environment's values, and which paths its admin listener serves.

var (
	buildOnce sync.Once
	proxyBin  string
	buildErr  error
)

// proxyBinary builds ./cmd/proxy once, from the repository root.
func proxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "enrichproxy-validate-")
		if err != nil {
			buildErr = err
			return
		}
		proxyBin = filepath.Join(dir, "proxy")
		cmd := exec.Command("go", "build", "-o", proxyBin, "./cmd/proxy")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/proxy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return proxyBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if proxyBin != "" {
		os.RemoveAll(filepath.Dir(proxyBin))
	}
	os.Exit(code)
}

// runProxy runs the binary with exactly env (nothing inherited from the test's own
// environment) and returns its output.
func runProxy(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, proxyBinary(t), args...)
	cmd.Env = append([]string{}, env...) // non-nil: a nil Env would inherit os.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKnownEnvIsWhatTheProxyReads checks this test's list of settings against the binary:
// every setting and policy key is one `proxy -h` documents, and every credential's _FILE
// variable is really read (pointing it at a missing file is a configuration problem).
func TestKnownEnvIsWhatTheProxyReads(t *testing.T) {
	out, err := runProxy(t, nil, "-h")
	if err != nil {
		t.Fatalf("proxy -h: %v\n%s", err, out)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(env ([A-Z0-9_]+)\)`).FindAllStringSubmatch(out, -1) {
		documented[m[1]] = true
	}
	for name, kind := range knownEnv() {
		if kind == "setting" && !documented[name] {
			t.Errorf("%s is in this test's list but `proxy -h` does not document it: fix the list (env_test.go)", name)
		}
	}
	if !documented["PROXY_CONFIG"] {
		t.Errorf("`proxy -h` does not document PROXY_CONFIG")
	}
	for _, name := range secretSettings {
		out, err := runProxy(t, []string{name + "_FILE=/nonexistent/enrichproxy-validate"}, "-check")
		if err == nil || !strings.Contains(out, name+"_FILE") {
			t.Errorf("proxy -check with %s_FILE pointing at no file: want a problem naming it, got err %v:\n%s", name, err, out)
		}
	}
}

// TestPolicyFilesPassCheck runs `proxy -check -config` on every rendered ConfigMap key that
// is a YAML file: unknown keys and bad values are errors there (SPEC 11).
func TestPolicyFilesPassCheck(t *testing.T) {
	all := renderAll(t)
	n := 0
	for _, dir := range slices.Sorted(maps.Keys(all)) {
		for _, cm := range all[dir].configMaps {
			for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
				if !strings.HasSuffix(key, ".yaml") && !strings.HasSuffix(key, ".yml") {
					continue
				}
				n++
				f := filepath.Join(t.TempDir(), key)
				if err := os.WriteFile(f, []byte(cm.Data[key]), 0o600); err != nil {
					t.Fatal(err)
				}
				if out, err := runProxy(t, nil, "-check", "-config", f); err != nil {
					t.Errorf("%s: ConfigMap %s key %s: proxy -check: %v\n%s", dir, cm.Name, key, err, out)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no policy file found in any rendered ConfigMap")
	}
}

// containerEnv turns the proxy container's environment into the process's, with every
// path it names mapped to the mounted files materialized on this machine, and values from
// the memory limit, a rendered ConfigMap or an example Secret resolved.
func containerEnv(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret) []string {
	t.Helper()
	local := materialize(t, proxyMounts(t, r, p, secrets))
	var env []string
	for _, e := range p.container.Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			ref := e.ValueFrom.ResourceFieldRef
			q, ok := p.container.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "limits."))]
			if !ok {
				t.Fatalf("%s: %s from %s, which is not set", p, e.Name, ref.Resource)
			}
			v = fmt.Sprint(q.Value())
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := secrets[ref.Name]
			if !ok {
				t.Fatalf("%s: %s from Secret %q, which no secret.example.yaml shows", p, e.Name, ref.Name)
			}
			if v, ok = secretKeys(s)[ref.Key]; !ok {
				t.Fatalf("%s: %s from Secret %q key %q, which its example does not have", p, e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := r.configMap(ref.Name)
			if cm == nil {
				t.Fatalf("%s: %s from ConfigMap %q, which is not rendered", p, e.Name, ref.Name)
			}
			var ok bool
			if v, ok = cm.Data[ref.Key]; !ok {
				t.Fatalf("%s: %s from ConfigMap %q key %q, which it does not have", p, e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom != nil:
			t.Fatalf("%s: %s: this valueFrom is not simulated by this test", p, e.Name)
		case e.Name == "PROXY_CONFIG" || strings.HasSuffix(e.Name, "_FILE"):
			f, ok := local(v)
			if !ok {
				t.Fatalf("%s: %s=%s is not a mounted file (see TestProxyContainer)", p, e.Name, v)
			}
			v = f
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// TestContainerEnvPassesCheck runs `proxy -check` with each proxy container's own
// environment and files: the values (addresses, durations, Redis URL) are valid, and the
// credentials and policy files are where the variables say.
func TestContainerEnvPassesCheck(t *testing.T) {
	eachProxyPod(t, func(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret) {
		env := containerEnv(t, r, p, secrets)
		if out, err := runProxy(t, env, "-check"); err != nil {
			t.Errorf("%s: proxy -check with the container's environment: %v\n%s", p, err, out)
		}
	})
}

// TestProbesAreServed starts the proxy with each container's environment (in -demo mode,
// so that no vendor is called, and on free loopback ports) and asks its admin listener for
// every probe's path and for /metrics, as the kubelet and Prometheus would.
func TestProbesAreServed(t *testing.T) {
	eachProxyPod(t, func(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret) {
		procEnv := containerEnv(t, r, p, secrets)
		// A free port can be taken between freeAddr and the proxy's listen: retry then.
		var stop func()
		var proxyAddr, adminAddr string
		for attempt := 1; stop == nil; attempt++ {
			proxyAddr, adminAddr = freeAddr(t), freeAddr(t)
			var run []string
			for _, kv := range procEnv {
				switch name, _, _ := strings.Cut(kv, "="); name {
				case "PROXY_LISTEN":
					kv = name + "=" + proxyAddr
				case "PROXY_ADMIN_LISTEN":
					kv = name + "=" + adminAddr
				case "PROXY_REDIS_URL":
					continue // no Redis here; the proxy would fall back to in-process limits anyway
				}
				run = append(run, kv)
			}
			var out string
			var err error
			stop, out, err = startProxy(t, run, adminAddr)
			if err != nil {
				if attempt < 3 && strings.Contains(out, "address already in use") {
					continue
				}
				t.Fatalf("%s: %v\n%s", p, err, out)
			}
		}
		defer stop()

		// Where the kubelet's request lands: the listener whose port the probe names.
		c := p.container
		env := envByName(c)
		listeners := map[int32]string{}
		for name, addr := range map[string]string{"PROXY_LISTEN": proxyAddr, "PROXY_ADMIN_LISTEN": adminAddr} {
			if _, port, err := listenPort(literal(env, name)); err == nil {
				listeners[port] = addr
			}
		}
		for _, pr := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				continue
			}
			g := pr.probe.HTTPGet
			cp, ok := resolvePort(c, g.Port)
			addr := listeners[cp.ContainerPort]
			if !ok || addr == "" {
				t.Errorf("%s: %s port %s is no port the proxy listens on", p, pr.kind, g.Port.String())
				continue
			}
			if code, _ := get(t, "http://"+addr+g.Path); code != http.StatusOK {
				t.Errorf("%s: %s GET %s on port %s: %d, want 200", p, pr.kind, g.Path, g.Port.String(), code)
			}
		}
		code, body := get(t, "http://"+adminAddr+metricsPath)
		if code != http.StatusOK || !strings.Contains(body, "enrichproxy_build_info") {
			t.Errorf("%s: GET %s on the admin listener: %d, want 200 with enrichproxy_build_info", p, metricsPath, code)
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// startProxy starts `proxy -demo` and waits until its admin listener answers /healthz.
// The returned function sends SIGTERM and checks the proxy drains and exits 0 (SPEC 9).
func startProxy(t *testing.T, env []string, adminAddr string) (stop func(), output string, err error) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(proxyBinary(t), "-demo")
	cmd.Env = append([]string{}, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := get(t, "http://"+adminAddr+livenessPath); code == http.StatusOK {
			break
		}
		select {
		case err := <-done:
			return nil, out.String(), fmt.Errorf("the proxy exited before serving: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return nil, out.String(), errors.New("the proxy's admin listener did not answer within 15s")
		}
	}
	return func() {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the proxy did not exit 0 on SIGTERM: %v\n%s", err, out.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("the proxy did not exit within 30s of SIGTERM\n%s", out.String())
		}
	}, "", nil
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

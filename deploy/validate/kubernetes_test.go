package validate

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// The kustomizations this repository promises; every other one found is checked too.
const (
	baseDir    = "base"
	sidecarDir = "overlays/sidecar"
	sharedDir  = "overlays/shared"
)

// SPEC 9: the admin listener serves these; the kubelet and Prometheus use them.
const (
	livenessPath  = "/healthz"
	readinessPath = "/readyz"
	metricsPath   = "/metrics"
)

// proxyUID is the distroless nonroot user the image runs as (Dockerfile: USER 65532).
const proxyUID = 65532

// defaultShutdownTimeout is PROXY_SHUTDOWN_TIMEOUT's default (SPEC 8).
const defaultShutdownTimeout = 25 * time.Second

// TestEveryKustomizationRendersStrictly: every kustomization under deploy/kubernetes
// builds, and every object it renders decodes strictly into its Go type.
func TestEveryKustomizationRendersStrictly(t *testing.T) {
	all := renderAll(t)
	for _, dir := range slices.Sorted(maps.Keys(renderErrs)) {
		t.Errorf("kustomization %s did not render or decode strictly:\n%v", dir, renderErrs[dir])
	}
	for _, want := range []string{baseDir, sidecarDir, sharedDir} {
		if _, ok := all[want]; !ok {
			if _, failed := renderErrs[want]; !failed {
				t.Errorf("no kustomization at deploy/kubernetes/%s", want)
			}
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(all)) {
		r := all[dir]
		t.Logf("%s: %d Deployment, %d Service, %d ConfigMap, %d NetworkPolicy, %d PodDisruptionBudget, %d PodMonitor, %d ServiceMonitor",
			dir, len(r.deployments), len(r.services), len(r.configMaps), len(r.networkPolicies), len(r.pdbs), len(r.podMonitors), len(r.serviceMonitors))
	}
}

// TestProxyContainer checks, in every kustomization, the proxy container's settings,
// ports, probes, security context, resources and files.
func TestProxyContainer(t *testing.T) {
	eachProxyPod(t, func(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret) {
		checkEnv(t, p)
		checkListenersAndPorts(t, p)
		checkProbes(t, p)
		checkSecurity(t, p)
		checkResources(t, p)
		checkFiles(t, r, p, secrets)
		checkGracePeriod(t, p)
		checkPlacement(t, p)
	})
}

func checkEnv(t *testing.T, p proxyPod) {
	t.Helper()
	known := knownEnv()
	seen := map[string]bool{}
	for _, e := range p.container.Env {
		if seen[e.Name] {
			t.Errorf("%s: env %s is set twice", p, e.Name)
		}
		seen[e.Name] = true
		kind, ok := known[e.Name]
		switch {
		case !ok:
			t.Errorf("%s: env %s is not a setting the proxy knows (SPEC 8, cmd/proxy/config.go); a misspelt name is silently ignored", p, e.Name)
		case kind == "secret":
			t.Errorf("%s: env %s puts a credential in the environment: mount it from a Secret and set %s_FILE", p, e.Name, e.Name)
		}
	}
	if len(p.container.EnvFrom) > 0 {
		t.Errorf("%s: envFrom would set names this test cannot check: list the variables in env", p)
	}
	for _, name := range []string{"PROXY_LISTEN", "PROXY_ADMIN_LISTEN", "PROXY_CONFIG", "ENROW_API_KEY_FILE", "ECORE_API_TOKEN_FILE"} {
		if !seen[name] {
			t.Errorf("%s: env %s is not set", p, name)
		}
	}
	// The proxy sets its soft memory limit to 90 % of the container's limit by itself; a
	// GOMEMLIMIT of the whole limit (resourceFieldRef) would leave no headroom.
	if gomem, ok := envByName(p.container)["GOMEMLIMIT"]; ok && gomem.ValueFrom != nil && gomem.ValueFrom.ResourceFieldRef != nil {
		t.Errorf("%s: GOMEMLIMIT from %s: leave it out, the proxy derives 90 %% of the limit", p, gomem.ValueFrom.ResourceFieldRef.Resource)
	}
}

func checkListenersAndPorts(t *testing.T, p proxyPod) {
	t.Helper()
	env := envByName(p.container)
	svcName := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)
	for _, port := range p.container.Ports {
		if !svcName.MatchString(port.Name) {
			t.Errorf("%s: port name %q is not a valid port name (lower-case, at most 15 characters)", p, port.Name)
		}
	}
	for _, l := range []struct{ env, port string }{{"PROXY_LISTEN", "proxy"}, {"PROXY_ADMIN_LISTEN", "admin"}} {
		host, n, err := listenPort(literal(env, l.env))
		if err != nil {
			t.Errorf("%s: %s=%q: %v", p, l.env, literal(env, l.env), err)
			continue
		}
		cp, ok := containerPort(p.container, l.port)
		switch {
		case !ok:
			t.Errorf("%s: no container port named %q (%s)", p, l.port, l.env)
		case cp.ContainerPort != n:
			t.Errorf("%s: port %q is %d but %s listens on %d", p, l.port, cp.ContainerPort, l.env, n)
		case cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP:
			t.Errorf("%s: port %q protocol %s, want TCP", p, l.port, cp.Protocol)
		}
		if l.env == "PROXY_ADMIN_LISTEN" && host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("%s: PROXY_ADMIN_LISTEN=%q: the kubelet's probes and Prometheus reach the pod's IP, not %s: listen on 0.0.0.0", p, literal(env, l.env), host)
		}
	}
}

func checkProbes(t *testing.T, p proxyPod) {
	t.Helper()
	c := p.container
	admin, _ := containerPort(c, "admin")
	for _, pr := range []struct {
		kind  string
		probe *corev1.Probe
		paths []string
	}{
		{"livenessProbe", c.LivenessProbe, []string{livenessPath}},
		{"readinessProbe", c.ReadinessProbe, []string{readinessPath}},
		{"startupProbe", c.StartupProbe, []string{livenessPath, readinessPath}},
	} {
		if pr.probe == nil {
			if pr.kind != "startupProbe" {
				t.Errorf("%s: no %s", p, pr.kind)
			}
			continue
		}
		g := pr.probe.HTTPGet
		if g == nil {
			t.Errorf("%s: %s: want httpGet on the admin port", p, pr.kind)
			continue
		}
		if !slices.Contains(pr.paths, g.Path) {
			t.Errorf("%s: %s path %q, want one of %q (SPEC 9)", p, pr.kind, g.Path, pr.paths)
		}
		cp, ok := resolvePort(c, g.Port)
		if !ok || cp.Name != "admin" || cp.ContainerPort != admin.ContainerPort {
			t.Errorf("%s: %s port %s: want the admin port (%q, %d), where /healthz and /readyz are served", p, pr.kind, g.Port.String(), "admin", admin.ContainerPort)
		}
		if g.Host != "" || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) {
			t.Errorf("%s: %s: host %q scheme %q: want the pod's IP over plain HTTP", p, pr.kind, g.Host, g.Scheme)
		}
	}
}

func checkSecurity(t *testing.T, p proxyPod) {
	t.Helper()
	sc := p.container.SecurityContext
	if sc == nil {
		t.Fatalf("%s: no securityContext", p)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: securityContext.runAsNonRoot: want true", p)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != proxyUID {
		t.Errorf("%s: securityContext.runAsUser: want %d (the image's nonroot user)", p, proxyUID)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: securityContext.readOnlyRootFilesystem: want true", p)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: securityContext.allowPrivilegeEscalation: want false", p)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: securityContext.privileged: want false", p)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: securityContext.capabilities: want drop [ALL] and nothing added", p)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		if pod := p.deployment.Spec.Template.Spec.SecurityContext; pod != nil {
			seccomp = pod.SeccompProfile
		}
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile: want RuntimeDefault", p)
	}
}

func checkResources(t *testing.T, p proxyPod) {
	t.Helper()
	res := p.container.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := res.Requests[name]; !ok {
			t.Errorf("%s: resources.requests.%s not set", p, name)
		}
	}
	limit, ok := res.Limits[corev1.ResourceMemory]
	if !ok {
		t.Errorf("%s: resources.limits.memory not set (the proxy's soft memory limit is derived from it)", p)
		return
	}
	if req, ok := res.Requests[corev1.ResourceMemory]; ok && req.Cmp(limit) > 0 {
		t.Errorf("%s: memory request %s is above the limit %s", p, req.String(), limit.String())
	}
}

// checkFiles checks that PROXY_CONFIG and every *_FILE point at a file the container
// really has: a key of a mounted ConfigMap (the policy) or Secret (the credentials).
func checkFiles(t *testing.T, r *rendering, p proxyPod, secrets map[string]*corev1.Secret) {
	t.Helper()
	mounts := proxyMounts(t, r, p, secrets)
	for _, e := range p.container.Env {
		var want string
		switch {
		case e.Name == "PROXY_CONFIG":
			want = "configMap"
		case strings.HasSuffix(e.Name, "_FILE"):
			want = "secret"
		default:
			continue
		}
		if e.Value == "" {
			t.Errorf("%s: %s: want a literal path", p, e.Name)
			continue
		}
		m, rel, ok := fileAt(mounts, e.Value)
		switch {
		case m.path == "":
			t.Errorf("%s: %s=%s is in no mounted volume", p, e.Name, e.Value)
		case m.kind != want:
			t.Errorf("%s: %s=%s is in a %s volume, want a %s", p, e.Name, e.Value, m.kind, want)
		case !ok:
			t.Errorf("%s: %s=%s: %s %q has no key %q (keys: %v)", p, e.Name, e.Value, m.kind, m.source, rel, slices.Sorted(maps.Keys(m.files)))
		}
	}
}

// checkGracePeriod: the pod's grace period covers preStop plus the proxy's own drain.
func checkGracePeriod(t *testing.T, p proxyPod) {
	t.Helper()
	drain := defaultShutdownTimeout
	if v := literal(envByName(p.container), "PROXY_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := proxyDuration(v)
		if err != nil {
			t.Errorf("%s: PROXY_SHUTDOWN_TIMEOUT=%q: %v", p, v, err)
		}
		drain = d
	}
	var preStop time.Duration
	if lc := p.container.Lifecycle; lc != nil && lc.PreStop != nil {
		switch {
		case lc.PreStop.Sleep != nil:
			preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
		case lc.PreStop.Exec != nil:
			t.Errorf("%s: preStop exec: the image is distroless and has no shell; use preStop.sleep", p)
		}
	}
	grace := 30 * time.Second
	if g := p.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace < preStop+drain {
		t.Errorf("%s: terminationGracePeriodSeconds %s < preStop %s + PROXY_SHUTDOWN_TIMEOUT %s: in-flight requests would be killed", p, grace, preStop, drain)
	}
}

// checkPlacement: a proxy on loopback serves only its own pod, so it must be a native
// sidecar beside an application that calls it there; a proxy listening on every interface
// is reachable by other pods, so it must require tokens (SPEC 2).
func checkPlacement(t *testing.T, p proxyPod) {
	t.Helper()
	env := envByName(p.container)
	listen := literal(env, "PROXY_LISTEN")
	host, _, err := listenPort(listen)
	if err != nil {
		return // reported by checkListenersAndPorts
	}
	loopback := host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
	if !loopback {
		if _, ok := env["PROXY_AUTH_TOKENS_FILE"]; !ok {
			t.Errorf("%s: PROXY_LISTEN=%s is reachable by other pods: set PROXY_AUTH_TOKENS_FILE (SPEC 2)", p, listen)
		}
		return
	}
	if !isNativeSidecar(p) {
		t.Errorf("%s: PROXY_LISTEN=%s (loopback): want a native sidecar (initContainers, restartPolicy: Always)", p, listen)
	}
	url := "http://" + listen
	var callers []string
	for _, c := range p.deployment.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if strings.TrimSuffix(e.Value, "/") == url || strings.HasPrefix(e.Value, url+"/") {
				callers = append(callers, c.Name)
			}
		}
	}
	if len(callers) == 0 {
		t.Errorf("%s: no application container is pointed at %s (an env value with that URL)", p, url)
	}
}

func isNativeSidecar(p proxyPod) bool {
	return p.init && p.container.RestartPolicy != nil && *p.container.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// TestBaseImageEntry: the base maps the proxy's image through an `images:` entry, so an
// overlay pins a tag or digest with `kustomize edit set image` instead of a patch.
func TestBaseImageEntry(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(kubeDir, baseDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kusttypes.Kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("base/kustomization.yaml: %v", err)
	}
	found := false
	for _, img := range k.Images {
		if img.Name == proxyImage {
			found = img.NewTag != "" || img.Digest != ""
		}
	}
	if !found {
		t.Errorf("base/kustomization.yaml: want an images: entry for %s with a newTag or digest", proxyImage)
	}
}

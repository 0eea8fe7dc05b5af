package validate

import (
	"maps"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// What each overlay adds around the proxy container: the sidecar's pod, the shared
// Service, the NetworkPolicy, and the selectors and ports that tie objects together.

// TestSidecarPattern: the base and the sidecar overlay run the proxy as a native sidecar
// of an application on loopback 8080, and the overlay scrapes it and fences it.
func TestSidecarPattern(t *testing.T) {
	for _, dir := range []string{baseDir, sidecarDir} {
		t.Run(dir, func(t *testing.T) {
			r := rendered(t, dir)
			p := r.onlyProxyPod(t)
			if !isNativeSidecar(p) {
				t.Errorf("%s: want the proxy in initContainers with restartPolicy: Always (a native sidecar)", p)
			}
			if len(p.deployment.Spec.Template.Spec.Containers) == 0 {
				t.Errorf("%s: the pod has no application container", p)
			}
			if got := literal(envByName(p.container), "PROXY_LISTEN"); got != "127.0.0.1:8080" {
				t.Errorf("%s: PROXY_LISTEN=%q, want 127.0.0.1:8080 (only the pod's app reaches it)", p, got)
			}
			if got := literal(envByName(p.container), "PROXY_ADMIN_LISTEN"); got != "0.0.0.0:9090" {
				t.Errorf("%s: PROXY_ADMIN_LISTEN=%q, want 0.0.0.0:9090", p, got)
			}
		})
	}
	r := rendered(t, sidecarDir)
	if len(r.podMonitors) != 1 {
		t.Errorf("%s: want one PodMonitor, got %d", sidecarDir, len(r.podMonitors))
	}
	if len(r.networkPolicies) != 1 {
		t.Errorf("%s: want one NetworkPolicy, got %d", sidecarDir, len(r.networkPolicies))
	}
}

// TestSharedService: two replicas behind a Service, tokens required, Redis shared,
// disruption budget, ServiceMonitor.
func TestSharedService(t *testing.T) {
	r := rendered(t, sharedDir)
	p := r.onlyProxyPod(t)
	d := p.deployment
	if p.init {
		t.Errorf("%s: a shared proxy is the pod's main container, not an init container", p)
	}
	if p.container.RestartPolicy != nil {
		t.Errorf("%s: restartPolicy is set on a regular container", p)
	}
	if n := len(d.Spec.Template.Spec.Containers) + len(d.Spec.Template.Spec.InitContainers); n != 1 {
		t.Errorf("%s: want the proxy alone in the pod, got %d containers", p, n)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment %s: want at least 2 replicas", d.Name)
	}
	env := envByName(p.container)
	if got := literal(env, "PROXY_LISTEN"); got != "0.0.0.0:8080" {
		t.Errorf("%s: PROXY_LISTEN=%q, want 0.0.0.0:8080", p, got)
	}
	if got := literal(env, "PROXY_REDIS_URL"); !strings.HasPrefix(got, "redis://") && !strings.HasPrefix(got, "rediss://") {
		t.Errorf("%s: PROXY_REDIS_URL=%q: want a redis:// URL, so that replicas share the Enrow rate limit", p, got)
	}
	if lc := p.container.Lifecycle; lc == nil || lc.PreStop == nil || lc.PreStop.Sleep == nil {
		t.Errorf("%s: want a preStop sleep, so endpoints are removed before the drain starts", p)
	}

	if len(r.services) != 1 {
		t.Fatalf("want one Service, got %d", len(r.services))
	}
	svc := r.services[0]
	var proxyPort *corev1.ServicePort
	for i, sp := range svc.Spec.Ports {
		if cp, ok := resolvePort(p.container, targetPort(sp)); ok && cp.Name == "proxy" {
			proxyPort = &svc.Spec.Ports[i]
		}
	}
	if proxyPort == nil || proxyPort.Port != 8080 {
		t.Errorf("Service %s: want port 8080 to the container's proxy port", svc.Name)
	}

	if len(r.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(r.pdbs))
	}
	pdb := r.pdbs[0]
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	switch {
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		if n := pdb.Spec.MinAvailable.IntVal; n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget %s: minAvailable %d with %d replicas: want 1 <= minAvailable < replicas (else a node drain blocks)", pdb.Name, n, replicas)
		}
	case pdb.Spec.MaxUnavailable != nil:
	default:
		t.Errorf("PodDisruptionBudget %s: want minAvailable (a number) or maxUnavailable", pdb.Name)
	}
	if len(r.serviceMonitors) != 1 {
		t.Errorf("want one ServiceMonitor, got %d", len(r.serviceMonitors))
	}
}

func targetPort(sp corev1.ServicePort) intstr.IntOrString {
	if sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal == 0 {
		return intstr.FromInt32(sp.Port)
	}
	return sp.TargetPort
}

// TestNetworkPolicies: egress only to DNS (53 UDP and TCP) and HTTPS (443); ingress only
// to the admin port, from the monitoring namespace; and the policy covers the proxy's pod.
func TestNetworkPolicies(t *testing.T) {
	all := renderAll(t)
	for _, dir := range slices.Sorted(maps.Keys(all)) {
		r := all[dir]
		for _, np := range r.networkPolicies {
			t.Run(dir+"/"+np.Name, func(t *testing.T) {
				checkNetworkPolicy(t, r, np)
			})
		}
	}
}

func checkNetworkPolicy(t *testing.T, r *rendering, np *networkingv1.NetworkPolicy) {
	t.Helper()
	p := r.onlyProxyPod(t)
	if ok, err := selects(&np.Spec.PodSelector, p.deployment.Spec.Template.Labels); err != nil || !ok {
		t.Errorf("podSelector does not select the proxy's pod (%s): %v", p, err)
	}
	types := np.Spec.PolicyTypes
	if !slices.Contains(types, networkingv1.PolicyTypeEgress) || !slices.Contains(types, networkingv1.PolicyTypeIngress) {
		t.Errorf("policyTypes %v: want both Ingress and Egress (else that direction is left open)", types)
	}
	egress := map[string]bool{}
	for i, rule := range np.Spec.Egress {
		if len(rule.Ports) == 0 {
			t.Errorf("egress rule %d has no ports: it allows every port", i)
		}
		for _, port := range rule.Ports {
			proto := corev1.ProtocolTCP
			if port.Protocol != nil {
				proto = *port.Protocol
			}
			if port.Port == nil || port.Port.Type != intstr.Int || port.EndPort != nil {
				t.Errorf("egress rule %d: port %v: want single numbered ports", i, port.Port)
				continue
			}
			egress[string(proto)+"/"+port.Port.String()] = true
		}
	}
	want := []string{"TCP/443", "TCP/53", "UDP/53"}
	if got := slices.Sorted(maps.Keys(egress)); !slices.Equal(got, want) {
		t.Errorf("egress ports %v, want exactly %v (DNS and HTTPS to the vendors)", got, want)
	}
	admin, _ := containerPort(p.container, "admin")
	if len(np.Spec.Ingress) == 0 {
		t.Errorf("no ingress rule: Prometheus could not scrape the admin port")
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("ingress rule %d has no ports: it opens every port", i)
		}
		for _, port := range rule.Ports {
			if port.Port == nil {
				t.Errorf("ingress rule %d: a port entry without a port opens every port", i)
				continue
			}
			if cp, ok := resolvePort(p.container, *port.Port); !ok || cp.ContainerPort != admin.ContainerPort {
				t.Errorf("ingress rule %d: port %s, want only the admin port %d", i, port.Port.String(), admin.ContainerPort)
			}
		}
		if len(rule.From) == 0 {
			t.Errorf("ingress rule %d has no from: every source may connect", i)
		}
		for _, peer := range rule.From {
			ns := peer.NamespaceSelector
			if ns == nil || ns.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" || peer.IPBlock != nil {
				t.Errorf("ingress rule %d: from %+v: want the monitoring namespace (kubernetes.io/metadata.name: monitoring)", i, peer)
			}
		}
	}
}

// TestSelectorsAndPorts: every selector selects what it is meant to and every named port
// exists, so the Service, the disruption budget and the monitors are not silently empty;
// and the Prometheus job name contains "enrichproxy", which the alert rules match on.
func TestSelectorsAndPorts(t *testing.T) {
	all := renderAll(t)
	for _, dir := range slices.Sorted(maps.Keys(all)) {
		r := all[dir]
		t.Run(dir, func(t *testing.T) {
			for _, d := range r.deployments {
				if ok, err := selects(d.Spec.Selector, d.Spec.Template.Labels); err != nil || !ok {
					t.Errorf("Deployment %s: selector does not select its own pod template: %v", d.Name, err)
				}
			}
			for _, svc := range r.services {
				d := selectedDeployment(t, r, "Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
				if d == nil {
					continue
				}
				for _, sp := range svc.Spec.Ports {
					if tp := targetPort(sp); !portDeclared(d, tp) {
						t.Errorf("Service %s: port %s targets %s, which no container of Deployment %s declares", svc.Name, sp.Name, tp.String(), d.Name)
					}
				}
			}
			for _, pdb := range r.pdbs {
				selectedDeployment(t, r, "PodDisruptionBudget "+pdb.Name, pdb.Spec.Selector)
			}
			for _, pm := range r.podMonitors {
				checkPodMonitor(t, r, pm)
			}
			for _, sm := range r.serviceMonitors {
				checkServiceMonitor(t, r, sm)
			}
		})
	}
}

func selectedDeployment(t *testing.T, r *rendering, what string, sel *metav1.LabelSelector) *appsv1.Deployment {
	t.Helper()
	var hit []*appsv1.Deployment
	for _, d := range r.deployments {
		ok, err := selects(sel, d.Spec.Template.Labels)
		if err != nil {
			t.Errorf("%s: selector: %v", what, err)
			return nil
		}
		if ok {
			hit = append(hit, d)
		}
	}
	if len(hit) != 1 {
		t.Errorf("%s: selector %v selects %d Deployments' pods, want 1", what, sel.MatchLabels, len(hit))
		return nil
	}
	return hit[0]
}

func portDeclared(d *appsv1.Deployment, port intstr.IntOrString) bool {
	_, ok := podPort(d, port)
	return ok
}

// podPort finds a port declared by any container of the pod, init containers included
// (Prometheus discovers those too).
func podPort(d *appsv1.Deployment, port intstr.IntOrString) (corev1.ContainerPort, bool) {
	spec := d.Spec.Template.Spec
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if cp, ok := resolvePort(&cs[i], port); ok {
				return cp, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

func checkPodMonitor(t *testing.T, r *rendering, pm *monitoringv1.PodMonitor) {
	t.Helper()
	what := "PodMonitor " + pm.Name
	d := selectedDeployment(t, r, what, &pm.Spec.Selector)
	if len(pm.Spec.PodMetricsEndpoints) == 0 {
		t.Errorf("%s: no podMetricsEndpoints", what)
	}
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		if ep.Port == nil || *ep.Port != "admin" {
			t.Errorf("%s: endpoint port %s, want the named port admin", what, ptrString(ep.Port))
		} else if d != nil {
			if _, ok := podPort(d, intstr.FromString(*ep.Port)); !ok {
				t.Errorf("%s: no container of Deployment %s declares port %q", what, d.Name, *ep.Port)
			}
		}
		if ep.Path != metricsPath {
			t.Errorf("%s: endpoint path %q, want %s", what, ep.Path, metricsPath)
		}
	}
	// Without jobLabel, prometheus-operator names the job <namespace>/<PodMonitor name>.
	if pm.Spec.JobLabel == "" && !strings.Contains(pm.Name, "enrichproxy") {
		t.Errorf("%s: the job label will be <namespace>/%s; the alerts match job=~\".*enrichproxy.*\": put enrichproxy in the name", what, pm.Name)
	}
}

func checkServiceMonitor(t *testing.T, r *rendering, sm *monitoringv1.ServiceMonitor) {
	t.Helper()
	what := "ServiceMonitor " + sm.Name
	var svc *corev1.Service
	for _, s := range r.services {
		if ok, err := selects(&sm.Spec.Selector, s.Labels); err == nil && ok {
			if svc != nil {
				t.Errorf("%s: selects more than one Service", what)
			}
			svc = s
		}
	}
	if svc == nil {
		t.Errorf("%s: selects no Service by its labels", what)
		return
	}
	d := selectedDeployment(t, r, "Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
	for _, ep := range sm.Spec.Endpoints {
		var sp *corev1.ServicePort
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].Name == ep.Port {
				sp = &svc.Spec.Ports[i]
			}
		}
		if sp == nil {
			t.Errorf("%s: endpoint port %q is not a port name of Service %s", what, ep.Port, svc.Name)
			continue
		}
		if d != nil {
			if cp, ok := podPort(d, targetPort(*sp)); !ok || cp.Name != "admin" {
				t.Errorf("%s: endpoint port %q reaches %v, want the container's admin port", what, ep.Port, cp)
			}
		}
		if ep.Path != metricsPath {
			t.Errorf("%s: endpoint path %q, want %s", what, ep.Path, metricsPath)
		}
	}
	// Without jobLabel, the job is the Service's name.
	if sm.Spec.JobLabel == "" && !strings.Contains(svc.Name, "enrichproxy") {
		t.Errorf("%s: the job label will be %s; the alerts match job=~\".*enrichproxy.*\"", what, svc.Name)
	}
}

func ptrString(p *string) string {
	if p == nil {
		return "(none)"
	}
	return *p
}

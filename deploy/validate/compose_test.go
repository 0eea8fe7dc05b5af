package validate

import (
	"context"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// The compose demo: deploy/compose/compose.yaml, loaded and schema-validated by
// compose-go (the library `docker compose` itself uses), then checked against the files
// it mounts. No Docker engine is needed.

var composeDir = filepath.Join(repoRoot, "deploy", "compose")

// ownedElsewhere tells whether a path belongs to the Prometheus rules or the Grafana
// dashboard (deploy/prometheus, deploy/grafana), which this test references but does not
// own: when one is missing, the check that needs it is skipped with a message.
func ownedElsewhere(p string) bool {
	for _, dir := range []string{"prometheus", "grafana"} {
		owner, _ := filepath.Abs(filepath.Join(repoRoot, "deploy", dir))
		if p == owner || strings.HasPrefix(p, owner+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// mustExist fails when path does not exist, or logs a skip for a path owned elsewhere.
func mustExist(t *testing.T, p, what string) bool {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		if ownedElsewhere(p) {
			t.Logf("SKIP %s: %s does not exist yet (owned by the Prometheus/Grafana work)", what, p)
			return false
		}
		t.Errorf("%s: %v", what, err)
		return false
	}
	return true
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	file, err := filepath.Abs(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	details, err := loader.LoadConfigFiles(ctx, []string{file}, filepath.Dir(file))
	if err != nil {
		t.Fatal(err)
	}
	details.Environment = types.Mapping{}
	project, err := loader.LoadWithContext(ctx, *details, func(o *loader.Options) {
		o.SetProjectName("enrichproxy-demo", true)
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose.yaml: no service %q", name)
	}
	return s
}

// hostPath maps a path inside a service's container to the file on the host, through the
// service's bind mounts (the deepest one holding it).
func hostPath(s types.ServiceConfig, containerPath string) (string, bool) {
	containerPath = path.Clean(containerPath)
	best := -1
	for i, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if containerPath == v.Target || strings.HasPrefix(containerPath, v.Target+"/") {
			if best < 0 || len(v.Target) > len(s.Volumes[best].Target) {
				best = i
			}
		}
	}
	if best < 0 {
		return "", false
	}
	v := s.Volumes[best]
	return filepath.Join(v.Source, filepath.FromSlash(strings.TrimPrefix(containerPath, v.Target))), true
}

func TestComposeProxy(t *testing.T) {
	p := loadCompose(t)
	s := service(t, p, "enrichproxy")
	root, _ := filepath.Abs(repoRoot)
	if s.Build == nil || filepath.Clean(s.Build.Context) != root {
		t.Errorf("enrichproxy: want build.context the repository root (%s), got %+v", root, s.Build)
	} else {
		dockerfile := s.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(s.Build.Context, dockerfile)
		}
		mustExist(t, dockerfile, "enrichproxy build.dockerfile")
	}
	if !slices.Equal(s.Command, types.ShellCommand{"-demo"}) {
		t.Errorf("enrichproxy: command %q, want [\"-demo\"]", s.Command)
	}
	known := knownEnv()
	for name := range s.Environment {
		if _, ok := known[name]; !ok {
			t.Errorf("enrichproxy: environment %s is not a setting the proxy knows", name)
		}
	}
	env := func(name string) string {
		if v := s.Environment[name]; v != nil {
			return *v
		}
		return ""
	}
	if got := env("PROXY_LISTEN"); got != "0.0.0.0:8080" {
		t.Errorf("enrichproxy: PROXY_LISTEN=%q, want 0.0.0.0:8080 (published ports reach the container's interface, not its loopback)", got)
	}
	published := map[uint32]string{}
	for _, port := range s.Ports {
		published[port.Target] = port.Published
	}
	for _, want := range []uint32{8080, 9090} {
		if published[want] != "" && published[want] != strconv.FormatUint(uint64(want), 10) {
			t.Errorf("enrichproxy: container port %d published as %s, want the same number", want, published[want])
		}
		if _, ok := published[want]; !ok {
			t.Errorf("enrichproxy: container port %d is not published", want)
		}
	}
	if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
		t.Errorf("enrichproxy: want read_only: true and cap_drop: [ALL], as in Kubernetes")
	}
}

// TestComposePublishesOnLoopbackOnly: a demo must not open ports to the network.
func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	p := loadCompose(t)
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		for _, port := range p.Services[name].Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1", name, port.Target, port.HostIP)
			}
		}
	}
}

// TestComposeBindMountsExist: every bind-mounted file or directory is in the repository.
func TestComposeBindMountsExist(t *testing.T) {
	p := loadCompose(t)
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		for _, v := range p.Services[name].Volumes {
			if v.Type == types.VolumeTypeBind {
				mustExist(t, v.Source, name+": volume "+v.Target)
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s: want :ro", name, v.Target)
				}
			}
		}
	}
}

// promConfig is the part of prometheus.yml this test reads (promtool checks the rest).
type promConfig struct {
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		MetricsPath   string `json:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

// TestComposePrometheus: Prometheus reads deploy/compose/prometheus.yml, its rule files
// resolve to the same repository files in the container as for promtool on the host, and
// it scrapes the proxy's admin port under a job name the alerts match.
func TestComposePrometheus(t *testing.T) {
	p := loadCompose(t)
	s := service(t, p, "prometheus")
	var configPath string
	for _, arg := range s.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			configPath = v
		}
	}
	if configPath == "" {
		t.Fatalf("prometheus: no --config.file in command %q", s.Command)
	}
	hostConfig, ok := hostPath(s, configPath)
	wantConfig, _ := filepath.Abs(filepath.Join(composeDir, "prometheus.yml"))
	if !ok || hostConfig != wantConfig {
		t.Fatalf("prometheus: --config.file=%s is %q on the host, want %s", configPath, hostConfig, wantConfig)
	}
	raw, err := os.ReadFile(hostConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg promConfig
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if len(cfg.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule files: want ../prometheus/alerts.yml")
	}
	if !slices.Contains(cfg.RuleFiles, "../prometheus/alerts.yml") {
		t.Errorf("prometheus.yml rule_files %q: want ../prometheus/alerts.yml", cfg.RuleFiles)
	}
	for _, rf := range cfg.RuleFiles {
		onHost := filepath.Join(filepath.Dir(hostConfig), filepath.FromSlash(rf))
		inContainer, ok := hostPath(s, path.Join(path.Dir(configPath), rf))
		if !ok || inContainer != onHost {
			t.Errorf("rule file %s: promtool reads %s but the container reads %q", rf, onHost, inContainer)
			continue
		}
		mustExist(t, onHost, "rule file "+rf)
	}

	proxy := service(t, p, "enrichproxy")
	adminPort := "9090"
	if v := proxy.Environment["PROXY_ADMIN_LISTEN"]; v != nil {
		_, adminPort, _ = net.SplitHostPort(*v)
	}
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				if target == "enrichproxy:"+adminPort {
					found = true
					if !strings.Contains(sc.JobName, "enrichproxy") {
						t.Errorf("job %q: the alerts match job=~\".*enrichproxy.*\"", sc.JobName)
					}
					if sc.MetricsPath != "" && sc.MetricsPath != metricsPath {
						t.Errorf("job %q: metrics_path %q, want %s", sc.JobName, sc.MetricsPath, metricsPath)
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("prometheus.yml scrapes no target enrichproxy:%s (the proxy's admin listener)", adminPort)
	}
}

// TestComposeGrafana: the provisioned data source is the compose Prometheus, and the
// dashboard provider's folder is the mounted deploy/grafana holding enrichproxy.json.
func TestComposeGrafana(t *testing.T) {
	p := loadCompose(t)
	s := service(t, p, "grafana")
	provisioning, ok := hostPath(s, "/etc/grafana/provisioning")
	if !ok {
		t.Fatal("grafana: nothing mounted at /etc/grafana/provisioning")
	}
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name, Type, URL string
			IsDefault       bool `json:"isDefault"`
		} `json:"datasources"`
	}
	readYAML(t, filepath.Join(provisioning, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !ds.Datasources[0].IsDefault {
		t.Errorf("grafana datasources: want one default prometheus at http://prometheus:9090 (the compose service), got %+v", ds.Datasources)
	}
	if _, ok := p.Services["prometheus"]; !ok {
		t.Error("the data source names a service prometheus that compose.yaml does not have")
	}

	var dash struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	readYAML(t, filepath.Join(provisioning, "dashboards", "enrichproxy.yml"), &dash)
	if len(dash.Providers) != 1 || dash.Providers[0].Type != "file" {
		t.Fatalf("grafana dashboards: want one file provider, got %+v", dash.Providers)
	}
	dir, ok := hostPath(s, dash.Providers[0].Options.Path)
	want, _ := filepath.Abs(filepath.Join(repoRoot, "deploy", "grafana"))
	if !ok || dir != want {
		t.Errorf("grafana dashboard provider path %s is %q on the host, want %s", dash.Providers[0].Options.Path, dir, want)
	}
	mustExist(t, filepath.Join(want, "enrichproxy.json"), "grafana dashboard")
	if home := s.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != nil {
		f, ok := hostPath(s, *home)
		if !ok || f != filepath.Join(want, "enrichproxy.json") {
			t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=%s is %q on the host, want deploy/grafana/enrichproxy.json", *home, f)
		}
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

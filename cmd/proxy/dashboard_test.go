package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

// The deploy files these tests hold to what the program exports.
var (
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "enrichproxy.json")
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	recordingFile = filepath.Join("..", "..", "deploy", "prometheus", "recording.yml")
)

// exportedNames starts the program, drives traffic after which every family is exported,
// and returns the sample names of its scrape: a histogram's _bucket, _sum and _count, a
// summary's name, _sum and _count, every other family's name.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	h := start(t, metricsEnv())
	driveEveryFamily(t, h)
	_, fams := h.scrape()
	names := map[string]bool{}
	for name, f := range fams {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// promqlKeywords are the words of PromQL that are not metric names.
var promqlKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVars    = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
)

// metricNames returns the metric names an expression selects, sorted and unique. It is a
// small lexer, not a parser: strings, label matchers, ranges, grouping clauses and
// Grafana variables are removed, then every identifier that is neither a keyword nor
// followed by "(" (a function or aggregation) is a metric name.
func metricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = grafanaVars.ReplaceAllString(s, "0")
	for prev := ""; prev != s; {
		prev = s
		s = promqlMatchers.ReplaceAllString(s, " ")
		s = promqlRanges.ReplaceAllString(s, " ")
	}
	s = promqlGrouping.ReplaceAllString(s, " ") // `sum by (a) (x)` → `sum  (x)`: a call

	seen := map[string]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// A number or a duration: 0.5, 1e3, 0x1f, 5m, 1h30m.
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t') {
				k++
			}
			if (k >= len(s) || s[k] != '(') && !promqlKeywords[strings.ToLower(word)] {
				seen[word] = true
			}
			i = j
		default:
			i++
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func TestMetricNames(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`sum by (vendor, le) (rate(x_bucket{a="b{c}",d=~"$vendor"}[$__rate_interval]))`, "x_bucket"},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m])))`, "a_bucket"},
		{`a and on (job, instance) b offset 5m`, "a b"},
		{`up{job=~".*enrichproxy.*"} == 0 or absent(up{job=~".*enrichproxy.*"})`, "up"},
		{"count by (vendor) (\n  x{s=\"i\"}\n unless\n x{s=\"i\"} offset 5m\n)", "x"},
		{`1e3 * y / 0x1f > bool .5`, "y"},
		{`max_over_time(s[1m:30s]) == 2 and min_over_time(s[1m]) > 0`, "s"},
		{`vendor:rec:rate5m{vendor=~"${vendor}"} / ignoring(quantile) other:rec`, "other:rec vendor:rec:rate5m"},
		{`sum without (instance) (rate(c_total[5m] @ end()))`, "c_total"},
	}
	for _, tc := range cases {
		if got := strings.Join(metricNames(tc.expr), " "); got != tc.want {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// recordingRules reads recording.yml: each recorded name and its expressions.
func recordingRules(t *testing.T) map[string][]string {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, recordingFile, &f)
	out := map[string][]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				t.Errorf("%s: a rule without record (alerts belong in alerts.yml)", recordingFile)
				continue
			}
			out[r.Record] = append(out[r.Record], r.Expr)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no recording rules", recordingFile)
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// sourceMetrics resolves the names an expression uses to the program's metric names:
// a recorded name (one with a colon) stands for the metrics of its rules' expressions.
func sourceMetrics(t *testing.T, expr string, rules map[string][]string) []string {
	t.Helper()
	var out []string
	var walk func(expr string, depth int)
	walk = func(expr string, depth int) {
		if depth > 10 {
			t.Fatalf("recording rules nest too deep at %q", expr)
		}
		for _, n := range metricNames(expr) {
			if !strings.Contains(n, ":") {
				out = append(out, n)
				continue
			}
			exprs, ok := rules[n]
			if !ok {
				t.Errorf("%q uses %s, which %s does not record", expr, n, recordingFile)
				continue
			}
			for _, e := range exprs {
				walk(e, depth+1)
			}
		}
	}
	walk(expr, 0)
	slices.Sort(out)
	return slices.Compact(out)
}

// grafana is the part of the dashboard model these tests read.
type grafana struct {
	SchemaVersion int            `json:"schemaVersion"`
	UID           string         `json:"uid"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *grafanaDS     `json:"datasource"`
	Panels     []grafanaPanel `json:"panels"` // a collapsed row's panels
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string     `json:"expr"`
		RefID      string     `json:"refId"`
		Datasource *grafanaDS `json:"datasource"`
	} `json:"targets"`
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) grafana {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafana
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panelsOf flattens rows.
func panelsOf(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, panelsOf(p.Panels)...)
	}
	return out
}

// TestDashboard: the dashboard's every query uses only metrics the program exports
// (recording rules resolved to their sources), every enrichproxy_* family appears on it,
// and its data source and vendor variables are as SPEC 9's operators expect.
func TestDashboard(t *testing.T) {
	exported := exportedNames(t)
	rules := recordingRules(t)
	d := readDashboard(t)

	if d.SchemaVersion != 39 {
		t.Errorf("got schemaVersion %d, want 39", d.SchemaVersion)
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid: provisioning and links need one")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("variable datasource: got type %q query %s, want a datasource variable of type prometheus", v.Type, v.Query)
			}
		case "vendor":
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				_ = json.Unmarshal(v.Query, &q.Query) // the older plain-string form
			}
			want := "label_values(enrichproxy_requests_total, vendor)"
			if v.Type != "query" || q.Query != want || v.Definition != want {
				t.Errorf("variable vendor: got type %q query %q definition %q, want a query variable %q", v.Type, q.Query, v.Definition, want)
			}
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("variable vendor: got data source %+v, want ${datasource}", v.Datasource)
			}
		}
	}
	if !vars["datasource"] || !vars["vendor"] {
		t.Errorf("got variables %v, want datasource and vendor", vars)
	}

	used := map[string]bool{}
	ids := map[int]string{}
	for _, p := range panelsOf(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: got data source %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: got data source %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			names := sourceMetrics(t, tg.Expr, rules)
			if len(names) == 0 {
				t.Errorf("panel %q query %s: %q selects no metric", p.Title, tg.RefID, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !exported[n] {
					t.Errorf("panel %q query %s uses %s, which the program does not export", p.Title, tg.RefID, n)
				}
			}
		}
	}

	// Every enrichproxy family is on the dashboard (a histogram through any of its series).
	for n := range exported {
		if !strings.HasPrefix(n, "enrichproxy_") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !used[n] && !used[base+"_bucket"] && !used[base+"_count"] && !used[base+"_sum"] {
			t.Errorf("no panel shows %s", n)
		}
	}
}

// TestRulesUseExportedMetrics: every alert and recording rule selects only metrics the
// program exports (and up, which Prometheus makes for every target); the alerts are the
// ones the runbooks name, each with a severity, a summary, a description and a runbook.
func TestRulesUseExportedMetrics(t *testing.T) {
	exported := exportedNames(t)
	rules := recordingRules(t)
	for name, exprs := range rules {
		for _, e := range exprs {
			for _, n := range sourceMetrics(t, e, rules) {
				if !exported[n] {
					t.Errorf("recording rule %s uses %s, which the program does not export", name, n)
				}
			}
		}
	}

	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, alertsFile, &f)
	var alerts []string
	for _, g := range f.Groups {
		if g.Name != "enrichproxy" {
			t.Errorf("%s: group %q, want enrichproxy", alertsFile, g.Name)
		}
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			names := sourceMetrics(t, r.Expr, rules)
			if len(names) == 0 {
				t.Errorf("alert %s selects no metric", r.Alert)
			}
			for _, n := range names {
				if n != "up" && !exported[n] {
					t.Errorf("alert %s uses %s, which the program does not export", r.Alert, n)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: got severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s", r.Alert, a)
				}
			}
		}
	}
	slices.Sort(alerts)
	want := []string{"EnrichproxyCircuitOpen", "EnrichproxyCreditsLow", "EnrichproxyDown", "EnrichproxyInsufficientCredits",
		"EnrichproxyRateLimitedSustained", "EnrichproxyRedisFallback", "EnrichproxyVendorErrorRatioHigh"}
	if !slices.Equal(alerts, want) {
		t.Errorf("got alerts %v, want %v", alerts, want)
	}
}

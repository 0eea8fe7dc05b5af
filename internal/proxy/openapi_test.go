package proxy

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrichproxy/enrichproxy/internal/metrics"
	"github.com/enrichproxy/enrichproxy/internal/normalize"
	"github.com/enrichproxy/enrichproxy/internal/upstream"
	"github.com/enrichproxy/enrichproxy/internal/vendorsim"
)

// oaDoc is the embedded OpenAPI document, decoded.
func oaDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return doc
}

// oaGet walks keys down a decoded JSON value; nil when a key is missing.
func oaGet(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// oaResolve follows a local $ref ("#/components/...").
func oaResolve(t *testing.T, doc map[string]any, v any) any {
	t.Helper()
	for range 10 {
		ref, ok := oaGet(v, "$ref").(string)
		if !ok {
			return v
		}
		p, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			t.Fatalf("$ref %q is not local", ref)
		}
		v = oaGet(doc, strings.Split(p, "/")...)
		if v == nil {
			t.Fatalf("$ref %q does not resolve", ref)
		}
	}
	t.Fatal("$ref chain too long")
	return nil
}

func oaStrings(t *testing.T, v any, what string) []string {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: got %T, want a list", what, v)
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("%s: %v is not a string", what, x)
		}
		out = append(out, s)
	}
	return out
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaOperations calls f for every operation of the document.
func oaOperations(doc map[string]any, f func(path, method string, item, op map[string]any)) {
	paths, _ := doc["paths"].(map[string]any)
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[p].(map[string]any)
		for _, m := range oaMethods {
			if op, ok := item[m].(map[string]any); ok {
				f(p, m, item, op)
			}
		}
	}
}

// TestOpenAPIIsWellFormed: an OpenAPI 3.1 document whose $refs all resolve and whose
// operation ids are unique.
func TestOpenAPIIsWellFormed(t *testing.T) {
	doc := oaDoc(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("got openapi %q, want 3.1.x", v)
	}
	for _, k := range []string{"info", "paths", "components"} {
		if doc[k] == nil {
			t.Errorf("no %q", k)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["$ref"].(string); ok {
				oaResolve(t, doc, x)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	seen := map[string]string{}
	oaOperations(doc, func(path, method string, _, op map[string]any) {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s %s: no operationId", method, path)
		} else if prev, dup := seen[id]; dup {
			t.Errorf("operationId %q used by %s and %s %s", id, prev, method, path)
		}
		seen[id] = method + " " + path
	})
	// Every header the proxy reads or writes is documented.
	raw := string(openAPIDoc)
	for _, h := range []string{"X-Request-Timeout", "Prefer", "X-Proxy-Token", "X-Request-Id", "X-Vendor",
		"Retry-After", "Preference-Applied", "X-Upstream-Status", "X-Enrich-Status", "X-Enrich-Qualification",
		"X-Enrich-Operation", "X-Enrich-Vendor"} {
		if !strings.Contains(raw, `"`+h+`"`) {
			t.Errorf("header %s is not documented", h)
		}
	}
}

// goConsts reads the string constants of package normalize's envelope.go: those of a
// named type (Status, Qualification, Operation), or untyped ones whose name has a prefix
// (Code…, Job…). Reading the source keeps the check honest when a constant is added.
func goConsts(t *testing.T) (typed map[string][]string, prefixed map[string][]string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../normalize/envelope.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	typed, prefixed = map[string][]string{}, map[string][]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				val := constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0))
				if id, ok := vs.Type.(*ast.Ident); ok {
					typed[id.Name] = append(typed[id.Name], val)
					continue
				}
				for _, p := range []string{"Code", "Job"} {
					if strings.HasPrefix(name.Name, p) {
						prefixed[p] = append(prefixed[p], val)
					}
				}
			}
		}
	}
	return typed, prefixed
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// TestOpenAPIEnumsAreTheGoConstants: the closed vocabularies of SPEC 3 in the document are
// exactly package normalize's constants, and the envelope's objects have exactly the Go
// structs' fields.
func TestOpenAPIEnumsAreTheGoConstants(t *testing.T) {
	doc := oaDoc(t)
	typed, prefixed := goConsts(t)
	if len(typed["Status"]) != 13 || len(typed["Qualification"]) != 6 || len(prefixed["Code"]) < 20 {
		t.Fatalf("reading normalize's constants went wrong: %v %v", typed, prefixed)
	}
	ops := make([]string, 0, len(normalize.Operations))
	for _, op := range normalize.Operations {
		ops = append(ops, string(op))
	}
	if !sameSet(ops, typed["Operation"]) {
		t.Fatalf("normalize.Operations %v is not every Operation constant %v", ops, typed["Operation"])
	}
	want := map[string][]string{
		"Status": typed["Status"], "Qualification": typed["Qualification"], "Operation": ops,
		"ErrorCode": prefixed["Code"], "JobState": prefixed["Job"],
		"Vendor": {normalize.Enrow, normalize.ECore},
	}
	for name, w := range want {
		got := oaStrings(t, oaGet(doc, "components", "schemas", name, "enum"), name)
		if !sameSet(got, w) {
			t.Errorf("schema %s enum %v, want the Go constants %v", name, got, w)
		}
	}
	var failover []string
	for _, s := range failoverStatuses {
		failover = append(failover, string(s))
	}
	if got := oaStrings(t, oaGet(doc, "components", "schemas", "FailoverStep", "properties", "status", "enum"), "failover"); !sameSet(got, failover) {
		t.Errorf("FailoverStep.status enum %v, want failoverStatuses %v", got, failover)
	}

	// The objects of the envelope: the schema's properties are the struct's JSON fields.
	for name, typ := range map[string]reflect.Type{
		"Envelope": reflect.TypeFor[normalize.Envelope](), "Result": reflect.TypeFor[normalize.Result](),
		"Job": reflect.TypeFor[normalize.Job](), "Credits": reflect.TypeFor[normalize.Credits](),
		"Error": reflect.TypeFor[normalize.Error](), "FailoverStep": reflect.TypeFor[normalize.FailoverStep](),
		"Upstream": reflect.TypeFor[normalize.Upstream](),
	} {
		var fields, always []string
		for f := range typ.Fields() {
			tag := f.Tag.Get("json")
			key, opts, _ := strings.Cut(tag, ",")
			if key == "-" {
				continue
			}
			fields = append(fields, key)
			if !strings.Contains(opts, "omitempty") {
				always = append(always, key)
			}
		}
		if name == "Envelope" {
			fields = append(fields, "data") // spliced in verbatim by the writer
		}
		schema := oaGet(doc, "components", "schemas", name).(map[string]any)
		props := slices.Collect(maps.Keys(oaGet(schema, "properties").(map[string]any)))
		if !sameSet(props, fields) {
			t.Errorf("schema %s has properties %v, want the Go fields %v", name, props, fields)
		}
		if schema["additionalProperties"] != false {
			t.Errorf("schema %s: want additionalProperties false (the envelope is a closed shape)", name)
		}
		var required []string
		if r := schema["required"]; r != nil {
			required = oaStrings(t, r, name+".required")
		}
		if !sameSet(required, always) {
			t.Errorf("schema %s requires %v, want the fields always written %v", name, required, always)
		}
	}
}

// TestOpenAPIStatusCodes: every documented status code is one the Status vocabulary maps
// to, every envelope response's statuses map to its code, and the error codes of the
// responses together are every error code.
func TestOpenAPIStatusCodes(t *testing.T) {
	doc := oaDoc(t)
	typed, prefixed := goConsts(t)
	codeOf := map[int][]string{}
	for _, s := range typed["Status"] {
		c := normalize.Status(s).HTTPCode()
		codeOf[c] = append(codeOf[c], s)
	}
	errCodes := map[string]bool{}
	check := func(where, code string, resp any) {
		if code == "default" {
			return
		}
		n, err := strconv.Atoi(code)
		if err != nil || codeOf[n] == nil {
			t.Errorf("%s: status code %s is not one the Status vocabulary maps to", where, code)
			return
		}
		resp = oaResolve(t, doc, resp)
		schema := oaGet(resp, "content", "application/json", "schema")
		for _, part := range oaGetList(schema, "allOf") {
			part = oaResolve(t, doc, part)
			if st := oaGet(part, "properties", "status", "enum"); st != nil {
				for _, s := range oaStrings(t, st, where+" status") {
					if got := normalize.Status(s).HTTPCode(); got != n {
						t.Errorf("%s: response %d documents status %s, which is HTTP %d", where, n, s, got)
					}
				}
			}
			if ec := oaGet(part, "properties", "error", "properties", "code", "enum"); ec != nil {
				for _, c := range oaStrings(t, ec, where+" error codes") {
					errCodes[c] = true
				}
			}
		}
	}
	oaOperations(doc, func(path, method string, _, op map[string]any) {
		resps, _ := op["responses"].(map[string]any)
		if len(resps) == 0 {
			t.Errorf("%s %s: no responses", method, path)
		}
		for code, resp := range resps {
			check(method+" "+path, code, resp)
		}
	})
	if got := slices.Collect(maps.Keys(errCodes)); !sameSet(got, prefixed["Code"]) {
		t.Errorf("the responses document error codes %v, want every code %v", got, prefixed["Code"])
	}
	// The /v1 routes document every status the envelope can have.
	for _, p := range []string{"/v1/email/find", "/v1/email/verify", "/v1/phone/find", "/v1/results/{ref}"} {
		item, ok := oaGet(doc, "paths", p).(map[string]any)
		if !ok {
			t.Errorf("%s is not documented", p)
		}
		for _, item := range item {
			resps := oaGet(item, "responses")
			if resps == nil {
				continue
			}
			for code := range codeOf {
				if oaGet(resps, strconv.Itoa(code)) == nil {
					t.Errorf("%s: status %d (%v) is not documented", p, code, codeOf[code])
				}
			}
		}
	}
}

func oaGetList(v any, key string) []any {
	l, _ := oaGet(v, key).([]any)
	return l
}

// oaServer is the real proxy router with real upstream clients, against simulated vendors.
func oaServer(t *testing.T) *Server {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), "test")
	sims := map[string]http.Handler{
		normalize.Enrow: vendorsim.NewEnrow(vendorsim.Options{Keys: []string{"k"}, NoRateLimit: true}),
		normalize.ECore: vendorsim.NewECore(vendorsim.Options{Keys: []string{"k"}}),
	}
	clients := map[string]*upstream.Client{}
	for name, sim := range sims {
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		pol := upstream.DefaultPolicy(name)
		pol.BaseURL = srv.URL
		c, err := upstream.New(upstream.Config{Name: name, Policy: pol, Secret: "k", Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		clients[name] = c
	}
	return New(Config{Vendors: clients, Metrics: m, MaxBodyBytes: 1 << 20, RequestTimeout: 5 * time.Second,
		VendorOrder: []string{normalize.Enrow, normalize.ECore}})
}

// oaConcrete fills a documented path's parameters with values that make sense for it.
func oaConcrete(path string) string {
	r := strings.NewReplacer(
		"/enrow/{path}", "/enrow/account/info",
		"/ecore/{path}", "/ecore/external/search/",
		"{ref}", "enrow:email.find:7b1f3a2e-5c1d-4c8e-9a51-2f4f0e6a9d11")
	return r.Replace(path)
}

// TestOpenAPIPathsAreServed: a request to every documented route and method reaches a
// handler of the real router (never unknown_route), the documented request examples are
// accepted, and every route of the router is documented.
func TestOpenAPIPathsAreServed(t *testing.T) {
	doc := oaDoc(t)
	s := oaServer(t)
	admin := Admin(prometheus.NewRegistry(), func() bool { return true })
	documented := map[string]bool{}
	oaOperations(doc, func(path, method string, item, op map[string]any) {
		documented[strings.ToUpper(method)+" "+path] = true
		target := oaConcrete(path)
		var body io.Reader
		example := oaGet(op, "requestBody", "content", "application/json", "example")
		if example != nil {
			b, _ := json.Marshal(example)
			body = bytes.NewReader(b)
		}
		req := httptest.NewRequest(strings.ToUpper(method), target, body)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h := http.Handler(s)
		if item["servers"] != nil { // the admin listener's paths
			h = admin
		}
		h.ServeHTTP(rec, req)
		where := method + " " + path + " (" + target + ")"
		var answer struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &answer)
		if answer.Error.Code == normalize.CodeUnknownRoute {
			t.Errorf("%s: got unknown_route: %d %s", where, rec.Code, rec.Body.String())
			return
		}
		if _, ok := oaGet(op, "responses", strconv.Itoa(rec.Code)).(map[string]any); !ok && oaGet(op, "responses", "default") == nil {
			t.Errorf("%s: answered %d, which is not documented", where, rec.Code)
		}
		if example != nil && rec.Code == http.StatusBadRequest {
			t.Errorf("%s: the documented example was rejected: %s", where, rec.Body.String())
		}
	})

	// The converse: every route of the proxy listener is documented.
	mux, ok := s.handler.(chi.Routes)
	if !ok {
		t.Fatalf("the router is a %T, not a chi router", s.handler)
	}
	err := chi.Walk(mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		p := strings.TrimSuffix(route, "/*")
		if p != route || slices.Contains(s.vendorNames(), strings.TrimPrefix(strings.TrimPrefix(p, "/raw"), "/")) {
			p += "/{path}"
		}
		switch method {
		case http.MethodGet, http.MethodPost:
		default:
			if strings.HasSuffix(p, "/{path}") {
				return nil // every method is forwarded; the usual ones are documented
			}
		}
		if !documented[method+" "+p] {
			t.Errorf("route %s %s (%s) is not documented", method, route, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenAPIServedOnAdmin: the admin listener serves the document at /openapi.json.
func TestOpenAPIServedOnAdmin(t *testing.T) {
	h := Admin(prometheus.NewRegistry(), func() bool { return true })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q, want 200 application/json", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), openAPIDoc) {
		t.Error("the served document is not the embedded one")
	}
}

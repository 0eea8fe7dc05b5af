package proxy

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the OpenAPI 3.1 document of the proxy's own API: the /v1 routes, the
// vendor and drop-in routes, the envelope with its closed vocabularies, and the admin
// listener's routes. This file is its one copy (docs/openapi.json links to it);
// openapi_test.go holds it to the router and to package normalize.
//
//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI answers GET /openapi.json on the admin listener.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
}

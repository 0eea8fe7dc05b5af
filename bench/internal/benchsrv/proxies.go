package benchsrv

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
)

// ReverseProxy is baseline (c): a plain httputil.ReverseProxy to target with Rewrite and
// SetURL, on Transport(). Nothing else: no logging, no metrics, no retries.
func ReverseProxy(target *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: Transport(),
	}
}

// Forwarder is baseline (d), the least a proxy built on net/http can do: one pooled
// client call per request to base + the request's path and query, the answer read whole
// and written back with its status and content type. It is the ceiling for enrichproxy,
// which must also read the answer whole to normalize it.
func Forwarder(base string) http.Handler {
	base = strings.TrimSuffix(base, "/")
	client := &http.Client{Transport: Transport()}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := base + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target, r.Body)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	})
}

package upstream

import (
	"net/http"
	"strings"
)

// Credential headers of the two vendors (vendors/enrow.md §1, vendors/ecore.md §2).
const (
	headerEnrowKey = "X-Api-Key"
	headerAuth     = "Authorization"
)

// dropped are request headers never forwarded to a vendor (SPEC 1): hop-by-hop headers,
// cookies, the client's forwarding headers, and the proxy's own headers. Accept-Encoding
// is left to the transport: net/http's asks for gzip and decompresses what it asked for,
// h1Transport asks for nothing (the answer is read as sent). Expect is not forwarded: the
// whole body is sent at once.
var dropped = map[string]bool{}

func init() {
	for _, h := range []string{
		"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Cookie", "Forwarded", "Host", "Content-Length", "Accept-Encoding", "Expect",
		"X-Proxy-Token", "X-Request-Timeout", "X-Vendor", "Prefer", "Cache-Control", "X-Request-Id",
		headerEnrowKey, headerAuth, // set below from the credential, never copied
	} {
		dropped[http.CanonicalHeaderKey(h)] = true
	}
}

// outboundHeader returns the headers sent to the vendor for a client request: the
// client's, less what SPEC 1 drops, with the vendor credential set (SPEC 2).
func (c *Client) outboundHeader(in http.Header, path, requestID string) http.Header {
	out := make(http.Header, len(in)+2)
	for k, vs := range in {
		if dropped[k] || strings.HasPrefix(k, "X-Forwarded-") || strings.HasPrefix(k, "X-Enrich-") {
			continue
		}
		out[k] = vs
	}
	// Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
	for _, v := range in.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out.Del(name)
			}
		}
	}
	if requestID != "" {
		out["X-Request-Id"] = []string{requestID}
	}
	// The other vendor's credential header is never forwarded (both were left out above).
	name := headerAuth
	if c.name == "enrow" {
		name = headerEnrowKey
	}
	if c.secret != "" && c.name == "enrow" {
		out[name] = c.secretHeader // the same for every request: made once, never written to
	} else if cred := c.credential(in, path); cred != "" {
		out[name] = []string{cred}
	}
	return out
}

// credential is the vendor credential header value a request is sent with: the configured
// one when there is one, else the client's own header for that vendor.
func (c *Client) credential(in http.Header, path string) string {
	if c.secret == "" {
		if c.name == "enrow" {
			return in.Get(headerEnrowKey)
		}
		return in.Get(headerAuth)
	}
	if c.name == "enrow" {
		return c.secret
	}
	// vendors/ecore.md §2: the account/contact enrichment job endpoints take Bearer, every
	// other endpoint takes Token.
	if strings.HasPrefix(path, "/enrichment/") || path == "/enrichment" ||
		strings.HasPrefix(path, "/enrichment-control") {
		return "Bearer " + c.secret
	}
	return "Token " + c.secret
}

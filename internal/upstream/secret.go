package upstream

// HasSecret reports whether the proxy holds a configured credential for the vendor (the
// vendor-neutral /v1 API uses only those).
func (c *Client) HasSecret() bool { return c.secret != "" }

package upstream

// CloseIdleConnections closes the vendor connections kept alive for reuse; run calls it
// at exit so nothing outlives the program's own lifetime (and tests see no leak).
func (c *Client) CloseIdleConnections() {
	if t, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

//go:build !unix

package upstream

import "net"

// peeker cannot look at a descriptor here: a connection is taken as open, and the answer
// is waited for with a buffer.
type peeker struct{}

func (p *peeker) init(net.Conn)  {}
func (p *peeker) alive() bool    { return true }
func (p *peeker) readable() bool { return false }
func (p *peeker) wait() error    { return nil }

// isConnReset is false here: an error on a reused connection is returned as is.
func isConnReset(error) bool { return false }

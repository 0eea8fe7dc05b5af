//go:build !unix

package upstream

import "net"

// connAlive cannot peek without blocking here: the connection is taken as open.
func connAlive(net.Conn) bool { return true }

// waitReadable returns at once here: the answer is waited for with a buffer.
func waitReadable(net.Conn) error { return nil }

// isConnReset is false here: an error on a reused connection is returned as is.
func isConnReset(error) bool { return false }

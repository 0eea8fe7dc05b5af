//go:build unix

package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// peeker looks at a connection's descriptor without reading from it: whether the vendor
// closed it or sent something, and waiting for an answer without a buffer. It is made
// once per connection, with the function it hands to RawConn.Read, so that a call
// allocates nothing.
type peeker struct {
	rc     syscall.RawConn // nil when the connection has no descriptor
	fn     func(fd uintptr) bool
	block  bool // fn waits for something to read (else it only looks)
	waited bool // fn has looked and found nothing: the next call is the poller's wake-up
	n      int
	err    error
	b      [1]byte
}

func (p *peeker) init(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
			p.fn = p.peek
		}
	}
}

// peek is the function RawConn.Read runs: true when done, false to wait for the poller
// to say there is something to read. It always looks first: the poller's readiness is
// reset before it runs, so data that came before would not wake a wait. Once it has
// waited, it does not look again.
func (p *peeker) peek(fd uintptr) bool {
	if p.waited {
		// The poller woke the wait: something came (or the connection ended), which the
		// read that follows finds out without one more system call here.
		p.n, p.err = 1, nil
		return true
	}
	for {
		p.n, _, p.err = syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if p.err != syscall.EINTR {
			break
		}
	}
	if p.block && (p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK) {
		p.waited = true
		return false
	}
	return true
}

// alive reports whether an idle connection is still open and quiet: the vendor has
// neither closed it nor sent anything on it.
func (p *peeker) alive() bool {
	if p.rc == nil {
		return true
	}
	p.block, p.waited = false, false
	err := p.rc.Read(p.fn)
	return err == nil && (errors.Is(p.err, syscall.EAGAIN) || errors.Is(p.err, syscall.EWOULDBLOCK))
}

// readable reports whether the vendor has sent something on the connection.
func (p *peeker) readable() bool {
	if p.rc == nil {
		return false
	}
	p.block, p.waited = false, false
	err := p.rc.Read(p.fn)
	return err == nil && p.err == nil && p.n > 0
}

// wait waits until the connection has something to read, or the vendor closed it
// (io.EOF when that is already so), without a buffer: a connection waiting for an answer
// holds no read buffer. It ends with the connection's deadline, as a read would. It costs
// one system call, as the read that would otherwise wait does.
func (p *peeker) wait() error {
	if p.rc == nil {
		return nil
	}
	p.block, p.waited = true, false
	switch err := p.rc.Read(p.fn); {
	case err != nil:
		return err
	case p.err != nil:
		return os.NewSyscallError("recvfrom", p.err)
	case p.n == 0:
		return io.EOF
	}
	return nil
}

// isConnReset reports whether err is the vendor resetting the connection.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

//go:build unix

package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// connAlive reports whether an idle connection is still open and quiet: the vendor has
// neither closed it nor sent anything on it (a peek that would block).
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}

// waitReadable waits until c has something to read, or the vendor closed it (io.EOF),
// without a buffer: a connection waiting for an answer holds no read buffer. It ends
// with the connection's deadline, as a read would.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var b [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if rerr != syscall.EINTR {
				break
			}
		}
		// EAGAIN: nothing yet, wait for the poller to say there is.
		return rerr != syscall.EAGAIN && rerr != syscall.EWOULDBLOCK
	})
	switch {
	case err != nil:
		return err
	case rerr != nil:
		return os.NewSyscallError("recvfrom", rerr)
	case n == 0:
		return io.EOF
	}
	return nil
}

// isConnReset reports whether err is the vendor resetting the connection.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

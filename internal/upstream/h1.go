package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// h1Transport is the HTTP/1.1 client used for a plain-HTTP vendor base URL (an egress
// gateway, a mesh sidecar, the simulators) when no HTTP proxy applies to it. HTTPS base
// URLs use net/http's transport, which negotiates HTTP/2 and so multiplexes held
// requests over few connections.
//
// net/http's transport runs two goroutines per connection (a reader and a writer) and
// hands every request and answer between them and the caller over channels. A sidecar
// holding thousands of requests to a slow vendor pays for those goroutines, their
// buffers and the hand-offs on every call (docs/benchmarks.md). Here the caller's
// goroutine writes the request and reads the answer itself on a pooled connection:
// request and answer are written and parsed by net/http (Request.Write, ReadResponse),
// only the connection pool and the cancellation are this file's.
//
// What it keeps of net/http's transport behaviour: keep-alive connections reused most
// recent first and closed after idleTimeout; a request that meets a reused connection
// the vendor had closed while idle is sent again on a new one (a request that cannot be
// replayed is never sent twice); an idle connection is checked open and quiet before it
// is used (checkIdleAfter; where the platform lets it peek: unix); an answer the vendor
// sent before reading the whole request is read; 1xx answers are skipped; answer headers
// are bounded (maxHeaderBytes); the request's context ends the call at any point, dial
// included. It does not ask for gzip (the vendor's answer is read as sent) and never
// follows redirects. What it does not do: read while it writes, so a vendor that stops
// reading a large upload without answering or closing holds the call until its deadline.
type h1Transport struct {
	dialer         net.Dialer
	maxIdlePerHost int
	idleTimeout    time.Duration
	maxHeaderBytes int64
	// checkIdleAfter is how long a connection must have been idle to be checked before
	// it carries a request that may be sent again: a vendor closes a connection it kept
	// alive after seconds, not within one; one closed sooner is met by sending again.
	// A request that may not be sent twice always has its connection checked.
	checkIdleAfter time.Duration

	mu      sync.Mutex
	idle    map[string][]*h1Conn // by host:port, least recently used first
	janitor *time.Timer          // closes connections idle too long; nil when none are idle
}

func newH1Transport() *h1Transport {
	return &h1Transport{
		dialer:         net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		maxIdlePerHost: 256,
		idleTimeout:    90 * time.Second,
		maxHeaderBytes: 1 << 20,
		checkIdleAfter: time.Second,
		idle:           map[string][]*h1Conn{},
	}
}

// h1Conn is one connection to a vendor. Its read buffer is taken from a pool once the
// answer starts to arrive, and given back when the answer has been read: a connection
// waiting for a slow vendor, or idle, holds none.
type h1Conn struct {
	t      *h1Transport
	addr   string
	conn   net.Conn
	r      headerLimitReader
	br     *bufio.Reader // while an answer is read; nil otherwise
	idleAt time.Time
	// interruptFunc is interrupt, made once: a method value made per call allocates.
	interruptFunc func()
	peek          peeker
}

// headerLimitReader bounds what an answer's headers may take: n bytes while they are
// read, no bound (n < 0) for the body.
type headerLimitReader struct {
	conn net.Conn
	n    int64
}

var errHeaderTooLarge = errors.New("vendor answer headers too large")

func (r *headerLimitReader) Read(p []byte) (int, error) {
	if r.n < 0 {
		return r.conn.Read(p)
	}
	if r.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.conn.Read(p)
	r.n -= int64(n)
	return n, err
}

// errClosedIdle is a reused connection found closed by the vendor before it answered:
// the request is sent again on a new connection.
var errClosedIdle = errors.New("vendor closed an idle connection")

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read or write
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// writers and readers are the buffers requests are written through and answers read
// through; a connection holds none while it waits for an answer.
var (
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<10) }}
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
)

// RoundTrip sends req and returns the vendor's answer; its body must be read to the end
// or closed for the connection to be reused.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTripWithin(req, 0)
}

// roundTripWithin is RoundTrip for one attempt of a call: unless timeout is 0, the
// connection, the request, the answer and its body must be through within timeout (a
// deadline on the connection: no timer or context of its own per attempt), else the
// call fails with an error that wraps errAttemptTimeout. The request's context still
// ends it at any point.
func (t *h1Transport) roundTripWithin(req *http.Request, timeout time.Duration) (*http.Response, error) {
	ctx := req.Context()
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	replayable := idempotent(req.Method) && (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil)
	for {
		pc, reused, err := t.conn(ctx, addr, replayable, deadline)
		if err != nil {
			return nil, err
		}
		resp, err := pc.roundTrip(ctx, req, reused)
		if err == nil {
			return resp, nil
		}
		// Only a request that may be sent twice is sent again, and only after a reused
		// connection failed (each is tried once; a new one ends the loop): the vendor may
		// have read it before the connection closed.
		if !reused || !replayable || !errors.Is(err, errClosedIdle) || ctx.Err() != nil {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// conn returns an idle connection to addr or dials a new one. An idle connection is
// checked first (one non-blocking peek) unless it was idle only briefly and the request
// may be sent again (checkIdleAfter): the vendor may have closed it while it was idle
// (its keep-alive timeout is often shorter than ours), or sent something on it (a 408),
// which net/http's reader goroutine would have seen at once.
func (t *h1Transport) conn(ctx context.Context, addr string, replayable bool, deadline time.Time) (*h1Conn, bool, error) {
	for {
		pc := t.takeIdle(addr)
		if pc == nil {
			break
		}
		check := !replayable || time.Since(pc.idleAt) >= t.checkIdleAfter
		// Before the peek: the deadline of the connection's last call may have passed.
		if err := pc.conn.SetDeadline(deadline); err == nil && (!check || pc.peek.alive()) {
			return pc, true, nil
		}
		pc.conn.Close()
	}
	conn, err := t.dial(ctx, addr, deadline)
	if err != nil {
		return nil, false, callError(ctx, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, false, err
	}
	pc := &h1Conn{t: t, addr: addr, conn: conn, r: headerLimitReader{conn: conn, n: -1}}
	pc.interruptFunc = pc.interrupt
	pc.peek.init(conn)
	return pc, false, nil
}

// dialed is the result of a dial.
type dialed struct {
	conn net.Conn
	err  error
}

// dial connects to addr on a goroutine of its own, as net/http does: dialing goes deep
// into the net package, and on the caller's goroutine it would double the stack of every
// request waiting for a vendor, for as long as it waits (docs/benchmarks.md). The dial
// ends with ctx, so the wait is bounded by it.
func (t *h1Transport) dial(ctx context.Context, addr string, deadline time.Time) (net.Conn, error) {
	ch := make(chan dialed, 1)
	go func() {
		d := t.dialer
		d.Deadline = deadline
		conn, err := d.DialContext(ctx, "tcp", addr)
		ch <- dialed{conn, err}
	}()
	d := <-ch
	return d.conn, d.err
}

// roundTrip writes req and reads the answer's headers. On a reused connection, a write
// that fails or an answer that ends before its first byte is the vendor having closed
// the connection while it was idle (errClosedIdle).
func (pc *h1Conn) roundTrip(ctx context.Context, req *http.Request, reused bool) (*http.Response, error) {
	closedIdle := func(err error) error {
		if reused {
			return fmt.Errorf("%w: %w", errClosedIdle, err)
		}
		return err
	}
	stop := context.AfterFunc(ctx, pc.interruptFunc)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(pc.conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	answerOnly := false // the answer is read, then the connection closed
	if err != nil {
		// A vendor may answer before it has read the whole request (a 413 or 401 to a
		// large upload) and close: that answer, when it is there, is the call's.
		if !pc.peek.readable() {
			return nil, pc.fail(ctx, stop, closedIdle(err))
		}
		answerOnly = true
	}
	// Wait for the answer's first byte without a buffer, then take one.
	if err := pc.peek.wait(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err) {
			err = closedIdle(err)
		}
		return nil, pc.fail(ctx, stop, err)
	}
	pc.br = readers.Get().(*bufio.Reader)
	pc.br.Reset(&pc.r)
	pc.r.n = pc.t.maxHeaderBytes
	if _, err := pc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err) {
			err = closedIdle(err)
		}
		return nil, pc.fail(ctx, stop, err)
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, pc.fail(ctx, stop, err)
		}
		// 1xx answers are interim (RFC 9110 §15.2); 101 would switch protocols, which a
		// vendor call never asks for: the connection is not reused after it.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	pc.r.n = -1
	reuse := !resp.Close && !req.Close && !answerOnly && resp.StatusCode != http.StatusSwitchingProtocols
	body := &h1Body{rc: resp.Body, pc: pc, ctx: ctx, stop: stop, reuse: reuse}
	if resp.Body == http.NoBody {
		body.release(body.reuse)
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// interrupt makes the connection's blocked read or write return: the request's context
// is done.
func (pc *h1Conn) interrupt() { pc.conn.SetDeadline(aLongTimeAgo) }

// fail closes the connection after an error and says why the call ended (callError).
func (pc *h1Conn) fail(ctx context.Context, stop func() bool, err error) error {
	stop()
	pc.conn.Close()
	pc.putReader()
	return callError(ctx, err)
}

// putReader gives the read buffer back to the pool, reporting whether it held nothing
// more: bytes after an answer mean the connection cannot carry another request.
func (pc *h1Conn) putReader() (empty bool) {
	if pc.br == nil {
		return true
	}
	empty = pc.br.Buffered() == 0
	pc.br.Reset(nil)
	readers.Put(pc.br)
	pc.br = nil
	return empty
}

// callError says why a call ended: the request's context when it is done (its interrupt
// is a deadline in the past), the attempt's timeout when the connection's deadline passed,
// else err as it is.
func callError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errAttemptTimeout, err)
	}
	return err
}

// h1Body is an answer's body; reading it to the end returns the connection to the pool.
// Like the rest of a call, it is used from one goroutine.
type h1Body struct {
	rc    io.ReadCloser
	pc    *h1Conn
	ctx   context.Context
	stop  func() bool
	reuse bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.release(b.reuse)
	case err != nil:
		b.release(false)
		err = callError(b.ctx, err)
	}
	return n, err
}

// unbind lifts the attempt's timeout from the rest of the body (a download is bounded by
// the request's context only).
func (b *h1Body) unbind() {
	if b.done {
		return
	}
	b.pc.conn.SetDeadline(time.Time{})
	// The context's interrupt may have run just before: it must still hold.
	if b.ctx.Err() != nil {
		b.pc.interrupt()
	}
}

// Close before the end closes the connection: what is left of the answer is not read.
func (b *h1Body) Close() error {
	if !b.done {
		b.release(false)
	}
	return nil
}

// release ends the call: the connection goes back to the pool when it can carry another
// request, and is closed otherwise.
func (b *h1Body) release(reuse bool) {
	b.done = true
	if !b.pc.putReader() {
		reuse = false
	}
	// stop reports false when the context's interrupt already ran or is running: the
	// connection's deadline is then in the past, or about to be.
	if !b.stop() || !reuse {
		b.pc.conn.Close()
		return
	}
	b.pc.t.putIdle(b.pc)
}

// takeIdle returns the most recently used idle connection to addr that has not been idle
// too long, or nil.
func (t *h1Transport) takeIdle(addr string) *h1Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[addr]
	for len(list) > 0 {
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		t.idle[addr] = list
		if time.Since(pc.idleAt) < t.idleTimeout {
			return pc
		}
		pc.conn.Close()
	}
	return nil
}

// putIdle keeps pc for reuse, or closes it when the pool is full.
func (t *h1Transport) putIdle(pc *h1Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[pc.addr]
	if len(list) >= t.maxIdlePerHost {
		pc.conn.Close()
		return
	}
	pc.idleAt = time.Now()
	t.idle[pc.addr] = append(list, pc)
	if t.janitor == nil {
		t.janitor = time.AfterFunc(t.idleTimeout, t.sweep)
	}
}

// sweep closes the connections idle for idleTimeout or more, and comes back when the
// oldest of those left will be.
func (t *h1Transport) sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.janitor = nil
	now := time.Now()
	var next time.Duration
	for addr, list := range t.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].idleAt) >= t.idleTimeout {
			list[n].conn.Close()
			n++
		}
		list = append(list[:0], list[n:]...)
		clear(list[len(list):cap(list)])
		if len(list) == 0 {
			delete(t.idle, addr)
			continue
		}
		if left := t.idleTimeout - now.Sub(list[0].idleAt); next == 0 || left < next {
			next = left
		}
		t.idle[addr] = list
	}
	if next > 0 {
		t.janitor = time.AfterFunc(next, t.sweep)
	}
}

// CloseIdleConnections closes every idle connection; connections in use are closed when
// their answer has been read. The transport stays usable.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for addr, list := range t.idle {
		for _, pc := range list {
			pc.conn.Close()
		}
		delete(t.idle, addr)
	}
	if t.janitor != nil {
		t.janitor.Stop()
		t.janitor = nil
	}
}

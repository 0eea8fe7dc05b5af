package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// h1Guard bounds every wait in these tests: it is a failure limit, never a delay to let
// things settle.
const h1Guard = 5 * time.Second

// h1Server is a loopback httptest server that counts the connections it accepts and
// reports each one it closes.
type h1Server struct {
	*httptest.Server
	accepted atomic.Int32
	closed   chan struct{} // one value per connection closed (buffered)
}

func newH1Server(t *testing.T, h http.HandlerFunc) *h1Server {
	t.Helper()
	s := &h1Server{closed: make(chan struct{}, 1024)}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.accepted.Add(1)
		case http.StateClosed, http.StateHijacked:
			select {
			case s.closed <- struct{}{}:
			default:
			}
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// waitClosed waits for the server to close one connection.
func (s *h1Server) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(h1Guard):
		t.Fatalf("the server saw no connection closed within %v", h1Guard)
	}
}

// wantAccepted fails the test unless the server accepted n connections.
func (s *h1Server) wantAccepted(t *testing.T, n int32) {
	t.Helper()
	if got := s.accepted.Load(); got != n {
		t.Fatalf("server accepted %d connections, want %d", got, n)
	}
}

// newTestH1 is a transport whose idle connections are closed when the test ends.
func newTestH1(t *testing.T) *h1Transport {
	t.Helper()
	tr := newH1Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// h1Idle is the number of idle connections tr holds, and whether its janitor is set.
func h1Idle(tr *h1Transport) (n int, janitor bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, list := range tr.idle {
		n += len(list)
	}
	return n, tr.janitor != nil
}

// h1Req builds a request bounded by h1Guard; an empty body is no body.
func h1Req(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	return h1ReqCtx(t, timeoutCtx(t, h1Guard), method, url, body)
}

// h1ReqCtx is h1Req with the request's context.
func h1ReqCtx(t *testing.T, ctx context.Context, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// h1Call sends req and reads the answer whole.
func h1Call(tr *h1Transport, req *http.Request) (*http.Response, string, error) {
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// h1MustCall sends req, and fails the test unless the answer is 200 with body want.
func h1MustCall(t *testing.T, tr *h1Transport, req *http.Request, want string) {
	t.Helper()
	resp, body, err := h1Call(tr, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK || body != want {
		t.Fatalf("%s %s: got %d %q, want 200 %q", req.Method, req.URL.Path, resp.StatusCode, body, want)
	}
}

// h1RoundTripWithin is tr.RoundTrip(req), failing the test if it has not returned within
// h1Guard.
func h1RoundTripWithin(t *testing.T, tr *h1Transport, req *http.Request) (*http.Response, error) {
	t.Helper()
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-time.After(h1Guard):
		t.Fatalf("RoundTrip did not return within %v", h1Guard)
		return nil, nil
	}
}

// waitEvent waits for ch to be closed or to deliver, failing the test after h1Guard.
func waitEvent(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(h1Guard):
		t.Fatalf("%s did not happen within %v", what, h1Guard)
	}
}

// rawServer is a loopback HTTP/1.1 server written by hand, for what net/http's server
// will not do: close a connection while keeping it open for reading, reset it, or keep
// it open after announcing Connection: close. serve handles the n-th connection
// accepted (from 1); the connection is closed when serve returns.
type rawServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	reqs   []rawReq
	closed bool
}

// rawReq is one request a rawServer read.
type rawReq struct {
	conn   int // which connection it came on, from 1
	method string
	path   string
	body   string
}

func (r rawReq) String() string {
	return fmt.Sprintf("conn %d: %s %s %q", r.conn, r.method, r.path, r.body)
}

func newRawServer(t *testing.T, serve func(s *rawServer, n int, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns = append(s.conns, c)
			n := len(s.conns)
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(s, n, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() }

// read reads one request on connection n, body included, and records it.
func (s *rawServer) read(n int, br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rawReq{conn: n, method: req.Method, path: req.URL.Path, body: string(body)})
	s.mu.Unlock()
	return nil
}

// serveOK answers every request on the connection with 200 "ok", keeping it open.
func (s *rawServer) serveOK(n int, c net.Conn, br *bufio.Reader) {
	for s.read(n, br) == nil {
		if _, err := io.WriteString(c, rawOK); err != nil {
			return
		}
	}
}

// onFirstConn serves every connection but the first normally; on the first it reads one
// request, answers it with answer, then runs then on the connection (closed when then
// returns).
func onFirstConn(answer string, then func(s *rawServer, c net.Conn, br *bufio.Reader)) func(*rawServer, int, net.Conn, *bufio.Reader) {
	return func(s *rawServer, n int, c net.Conn, br *bufio.Reader) {
		if n > 1 {
			s.serveOK(n, c, br)
			return
		}
		if s.read(n, br) != nil {
			return
		}
		io.WriteString(c, answer)
		then(s, c, br)
	}
}

// wantRequests fails the test unless the server read exactly want, in order.
func (s *rawServer) wantRequests(t *testing.T, want ...rawReq) {
	t.Helper()
	s.mu.Lock()
	got := append([]rawReq(nil), s.reqs...)
	s.mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("server read\n\t%v\nwant\n\t%v", got, want)
	}
}

// rawOK is a keep-alive answer.
const rawOK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// resetConn closes c with a RST rather than a FIN.
func resetConn(t *testing.T, c net.Conn) {
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Error(err)
	}
	c.Close()
}

// echoPath answers every request with its method and path, and a POST with its body.
func echoPath(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
}

func TestH1ReusesConnection(t *testing.T) {
	s := newH1Server(t, echoPath)
	tr := newTestH1(t)
	// A POST is sent on a reused connection only after a liveness check: a healthy
	// connection must pass it.
	steps := []struct{ method, path, body string }{
		{http.MethodGet, "/a", ""},
		{http.MethodGet, "/b", ""},
		{http.MethodPost, "/c", `{"x":1}`},
		{http.MethodGet, "/d", ""},
		{http.MethodPost, "/e", `{"y":2}`},
	}
	for _, st := range steps {
		h1MustCall(t, tr, h1Req(t, st.method, s.URL+st.path, st.body), st.method+" "+st.path+" "+st.body)
		if n, _ := h1Idle(tr); n != 1 {
			t.Fatalf("after %s %s: %d idle connections, want 1", st.method, st.path, n)
		}
	}
	s.wantAccepted(t, 1)
}

// closingServer answers the first request on its first connection, then closes that
// connection as how says ("fin", "rst", or "halfclose": its sending side only, still
// reading, so that a request written on it is seen rather than lost); closed is closed
// then. Every later connection is served normally.
func closingServer(t *testing.T, how string) (s *rawServer, closed <-chan struct{}) {
	done := make(chan struct{})
	s = newRawServer(t, onFirstConn(rawOK, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		switch how {
		case "rst":
			resetConn(t, c)
		case "halfclose":
			c.(*net.TCPConn).CloseWrite()
			close(done)
			for s.read(1, br) == nil {
			}
			return
		default:
			c.Close()
		}
		close(done)
	}))
	return s, done
}

// TestH1ConnectionClosedWhileIdle: a GET that meets a pooled connection the vendor closed
// is sent again on a new one; a POST is never written on it.
func TestH1ConnectionClosedWhileIdle(t *testing.T) {
	for _, tc := range []struct{ method, how, body string }{
		{http.MethodGet, "fin", ""}, {http.MethodGet, "rst", ""},
		{http.MethodPost, "halfclose", `{"q":1}`}, {http.MethodPost, "rst", `{"q":1}`},
	} {
		t.Run(tc.method+" "+tc.how, func(t *testing.T) {
			s, closed := closingServer(t, tc.how)
			tr := newTestH1(t)
			h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL()+"/first", ""), "ok")
			waitEvent(t, closed, "the server closing the first connection")
			if n, _ := h1Idle(tr); n != 1 {
				t.Fatalf("%d idle connections, want the closed one pooled", n)
			}
			h1MustCall(t, tr, h1Req(t, tc.method, s.URL()+"/second", tc.body), "ok")
			s.wantRequests(t,
				rawReq{conn: 1, method: "GET", path: "/first"},
				rawReq{conn: 2, method: tc.method, path: "/second", body: tc.body})
		})
	}
}

// A POST that passed the liveness check was written, read by the vendor, and then the
// connection closed without an answer: the vendor may have acted on it, so it must not
// be sent again (net/http's transport returns the error for a request that is not
// replayable once it has been written).
func TestH1POSTNotResentAfterVendorReadIt(t *testing.T) {
	s := newRawServer(t, onFirstConn(rawOK, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		s.read(1, br) // the POST: read whole, then the connection closes unanswered
	}))
	tr := newTestH1(t)
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL()+"/first", ""), "ok")
	_, _, err := h1Call(tr, h1Req(t, http.MethodPost, s.URL()+"/search", `{"q":1}`))
	if err == nil {
		t.Error("POST: got an answer, want the error of the connection closed unanswered")
	}
	s.wantRequests(t,
		rawReq{conn: 1, method: "GET", path: "/first"},
		rawReq{conn: 1, method: "POST", path: "/search", body: `{"q":1}`})
}

func TestH1ContextEndsCall(t *testing.T) {
	var arrivals sync.Map // path → chan struct{}, closed when a request for it arrives
	arrived := func(path string) chan struct{} {
		ch, _ := arrivals.LoadOrStore(path, make(chan struct{}))
		return ch.(chan struct{})
	}
	release := make(chan struct{})
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
		case "/hangbody":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "part")
			http.NewResponseController(w).Flush()
		default:
			io.WriteString(w, "ok")
			return
		}
		close(arrived(r.URL.Path + r.URL.RawQuery))
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	tr := newTestH1(t)

	t.Run("cancel while waiting for the answer", func(t *testing.T) {
		// A reused connection first, then a new one.
		for i := range 2 {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			q := fmt.Sprint(i)
			go func() {
				<-arrived("/hang" + q)
				cancel()
			}()
			_, err := h1RoundTripWithin(t, tr, h1ReqCtx(t, ctx, http.MethodGet, s.URL+"/hang?"+q, ""))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			s.waitClosed(t)
			h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/", ""), "ok")
		}
	})

	t.Run("deadline while waiting for the answer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := h1RoundTripWithin(t, tr, h1ReqCtx(t, ctx, http.MethodGet, s.URL+"/hang?deadline", ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/", ""), "ok")
	})

	t.Run("cancel while reading the body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp, err := h1RoundTripWithin(t, tr, h1ReqCtx(t, ctx, http.MethodGet, s.URL+"/hangbody", ""))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		part := make([]byte, 4)
		if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "part" {
			t.Fatalf("got %q, %v, want the first part", part, err)
		}
		waitEvent(t, arrived("/hangbody"), "the request reaching the server")
		cancel()
		readDone := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(resp.Body)
			readDone <- err
		}()
		select {
		case err := <-readDone:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("reading the body: got %v, want context.Canceled", err)
			}
		case <-time.After(h1Guard):
			t.Fatalf("reading the body did not end within %v of the cancel", h1Guard)
		}
		if n, _ := h1Idle(tr); n != 0 {
			t.Fatalf("%d idle connections after a cancelled body, want 0", n)
		}
		h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/", ""), "ok")
	})
}

func TestH1AnswerHeaderLimit(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("X-Big", strings.Repeat("a", 4<<10))
		case "/interim":
			// Interim answers count against the same limit as the final one.
			w.Header().Set("Link", "<"+strings.Repeat("b", 300)+">; rel=preload")
			for range 5 {
				w.WriteHeader(http.StatusEarlyHints)
			}
		case "/bigbody":
			w.Header().Set("X-Medium", strings.Repeat("c", 600))
			io.WriteString(w, strings.Repeat("d", 64<<10))
			return
		}
		io.WriteString(w, "ok")
	})
	tr := newTestH1(t)
	tr.maxHeaderBytes = 1024

	accepted := int32(1)
	for _, path := range []string{"/big", "/interim"} {
		_, _, err := h1Call(tr, h1Req(t, http.MethodGet, s.URL+path, ""))
		if err == nil {
			t.Fatalf("GET %s: got an answer, want an error for headers over 1024 bytes", path)
		}
		if !errors.Is(err, errHeaderTooLarge) {
			t.Errorf("GET %s: got %v, want errHeaderTooLarge", path, err)
		}
		// The connection is dropped; the next call works on a new one.
		h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/small", ""), "ok")
		s.wantAccepted(t, accepted+1)
		accepted++
	}
	// The limit is on headers only: a body longer than it is read whole.
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/bigbody", ""), strings.Repeat("d", 64<<10))
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/small", ""), "ok")
	s.wantAccepted(t, accepted)
}

func TestH1SkipsInterimAnswers(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
		}
		body, _ := io.ReadAll(r.Body) // with Expect: 100-continue, sends 100 Continue first
		w.Header().Set("X-Final", "yes")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "final "+string(body))
	})
	tr := newTestH1(t)
	for i, req := range []*http.Request{
		h1Req(t, http.MethodGet, s.URL+"/hints", ""),
		func() *http.Request {
			req := h1Req(t, http.MethodPost, s.URL+"/continue", "payload")
			req.Header.Set("Expect", "100-continue")
			return req
		}(),
		h1Req(t, http.MethodGet, s.URL+"/hints", ""),
	} {
		resp, body, err := h1Call(tr, req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want := "final "
		if req.Method == http.MethodPost {
			want += "payload"
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Final") != "yes" || body != want {
			t.Fatalf("call %d: got %d X-Final=%q %q, want 200 X-Final=yes %q",
				i, resp.StatusCode, resp.Header.Get("X-Final"), body, want)
		}
	}
	s.wantAccepted(t, 1)
}

func TestH1ChunkedBody(t *testing.T) {
	var want strings.Builder
	for i := range 200 {
		fmt.Fprintf(&want, "piece %03d %s|", i, strings.Repeat("x", i%37))
	}
	pieces := strings.SplitAfter(want.String(), "|")
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for _, p := range pieces {
			io.WriteString(w, p)
			rc.Flush()
		}
	})
	tr := newTestH1(t)
	for i := range 3 {
		resp, body, err := h1Call(tr, h1Req(t, http.MethodGet, s.URL+"/", ""))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if fmt.Sprint(resp.TransferEncoding) != "[chunked]" || resp.ContentLength != -1 {
			t.Fatalf("call %d: got Transfer-Encoding %v, Content-Length %d; want a chunked answer",
				i, resp.TransferEncoding, resp.ContentLength)
		}
		if body != want.String() {
			t.Fatalf("call %d: got %d bytes, want %d: %.60q…", i, len(body), want.Len(), body)
		}
	}
	s.wantAccepted(t, 1)
}

// An answer after which the connection must not carry another request: the next one goes
// on a new connection. The server keeps the first connection open and records any
// request sent on it anyway.
func TestH1ConnectionCloseNotReused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		reqClose bool
		answer   string
	}{
		{name: "close, Content-Length", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{name: "close, chunked", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{name: "HTTP/1.0", method: "GET",
			answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{name: "request close", method: "GET", reqClose: true, answer: rawOK},
		{name: "close, 204", method: "GET",
			answer: "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"},
		{name: "close, HEAD", method: "HEAD",
			answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"},
		{name: "close, empty body", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{name: "request close, 204", method: "GET", reqClose: true,
			answer: "HTTP/1.1 204 No Content\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, onFirstConn(tc.answer, func(s *rawServer, c net.Conn, br *bufio.Reader) {
				// Answer a request sent here anyway, so that the client does not hang.
				if s.read(1, br) == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
				}
			}))
			tr := newTestH1(t)
			req := h1Req(t, tc.method, s.URL()+"/first", "")
			req.Close = tc.reqClose
			resp, _, err := h1Call(tr, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode/100 != 2 {
				t.Fatalf("got status %d", resp.StatusCode)
			}
			h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL()+"/second", ""), "ok")
			s.wantRequests(t,
				rawReq{conn: 1, method: tc.method, path: "/first"},
				rawReq{conn: 2, method: "GET", path: "/second"})
		})
	}
}

func TestH1BodyClosedEarlyNotReused(t *testing.T) {
	big := strings.Repeat("z", 1<<20) // more than the socket buffers: the server blocks writing
	for _, read := range []int{0, 10} {
		t.Run(fmt.Sprintf("read %d bytes", read), func(t *testing.T) {
			s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/big" {
					io.WriteString(w, big)
					return
				}
				io.WriteString(w, "ok")
			})
			tr := newTestH1(t)
			resp, err := tr.RoundTrip(h1Req(t, http.MethodGet, s.URL+"/big", ""))
			if err != nil {
				t.Fatal(err)
			}
			if read > 0 {
				if _, err := io.ReadFull(resp.Body, make([]byte, read)); err != nil {
					t.Fatal(err)
				}
			}
			if err := resp.Body.Close(); err != nil {
				t.Fatal(err)
			}
			if n, _ := h1Idle(tr); n != 0 {
				t.Fatalf("%d idle connections after a body closed early, want 0", n)
			}
			// The server's handler, blocked writing, ends: the connection is closed.
			s.waitClosed(t)
			h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/small", ""), "ok")
			s.wantAccepted(t, 2)
		})
	}
}

func TestH1CloseIdleConnections(t *testing.T) {
	s := newH1Server(t, echoPath)
	tr := newTestH1(t)
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/a", ""), "GET /a ")
	if n, janitor := h1Idle(tr); n != 1 || !janitor {
		t.Fatalf("got %d idle connections (janitor %v), want 1 and a janitor", n, janitor)
	}
	tr.CloseIdleConnections()
	if n, janitor := h1Idle(tr); n != 0 || janitor {
		t.Fatalf("got %d idle connections (janitor %v) after CloseIdleConnections, want none", n, janitor)
	}
	s.waitClosed(t)
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/b", ""), "GET /b ")
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/c", ""), "GET /c ")
	s.wantAccepted(t, 2)
}

func TestH1JanitorClosesIdleConnections(t *testing.T) {
	s := newH1Server(t, echoPath)
	tr := newTestH1(t)
	tr.idleTimeout = 20 * time.Millisecond
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/a", ""), "GET /a ")
	s.waitClosed(t) // the janitor closed the idle connection; nothing else would
	if n, janitor := h1Idle(tr); n != 0 || janitor {
		t.Fatalf("got %d idle connections (janitor %v) after the sweep, want none", n, janitor)
	}
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/b", ""), "GET /b ")
	s.wantAccepted(t, 2)
	s.waitClosed(t) // and again: a new janitor for the new idle connection
}

// closeRecorder is a connection that records being closed.
type closeRecorder struct {
	net.Conn
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

func TestH1SweepKeepsYoungConnections(t *testing.T) {
	tr := newH1Transport()
	tr.idleTimeout = time.Hour
	now := time.Now()
	var conns []*closeRecorder
	add := func(addr string, idleFor time.Duration) {
		c := &closeRecorder{}
		conns = append(conns, c)
		tr.idle[addr] = append(tr.idle[addr], &h1Conn{t: tr, addr: addr, conn: c, idleAt: now.Add(-idleFor)})
	}
	add("a:80", 3*time.Hour)
	add("a:80", 2*time.Hour)
	add("a:80", 30*time.Minute)
	add("b:80", 90*time.Minute)
	tr.sweep()
	defer tr.CloseIdleConnections()
	for i, want := range []bool{true, true, false, true} {
		if got := conns[i].closed.Load(); got != want {
			t.Errorf("connection %d: closed %v, want %v", i, got, want)
		}
	}
	tr.mu.Lock()
	left, janitor := tr.idle, tr.janitor != nil
	if len(left) != 1 || len(left["a:80"]) != 1 || left["a:80"][0].conn != conns[2] || !janitor {
		t.Errorf("after the sweep: idle %v, janitor %v; want the young connection to a:80 and a janitor", left, janitor)
	}
	tr.mu.Unlock()
	// takeIdle hands out the most recently used connection and drops expired ones.
	add("c:80", 2*time.Hour)
	add("c:80", time.Minute)
	add("c:80", 0)
	if pc := tr.takeIdle("c:80"); pc == nil || pc.conn != conns[6] {
		t.Fatal("takeIdle did not return the most recently used connection")
	}
	if pc := tr.takeIdle("c:80"); pc == nil || pc.conn != conns[5] {
		t.Fatal("takeIdle did not return the next most recently used connection")
	}
	if pc := tr.takeIdle("c:80"); pc != nil || !conns[4].closed.Load() {
		t.Fatal("takeIdle returned, or did not close, a connection idle too long")
	}
}

func TestH1MaxIdlePerHost(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/together" {
			arrived.Done()
			<-both
		}
		io.WriteString(w, "ok")
	})
	go func() {
		arrived.Wait()
		close(both)
	}()
	tr := newTestH1(t)
	tr.maxIdlePerHost = 1
	var wg sync.WaitGroup
	for range 2 {
		req := h1Req(t, http.MethodGet, s.URL+"/together", "")
		wg.Go(func() {
			if _, body, err := h1Call(tr, req); err != nil || body != "ok" {
				t.Errorf("got %q, %v", body, err)
			}
		})
	}
	wg.Wait()
	s.wantAccepted(t, 2)
	s.waitClosed(t) // the one the full pool could not keep
	if n, _ := h1Idle(tr); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
	h1MustCall(t, tr, h1Req(t, http.MethodGet, s.URL+"/", ""), "ok")
	s.wantAccepted(t, 2)
}

// h1TraceCount sends a GET and a POST, each traced, and returns how many times
// WroteHeaders was called for each.
func h1TraceCount(t *testing.T) map[string]int32 {
	t.Helper()
	s := newH1Server(t, echoPath)
	tr := newTestH1(t)
	counts := map[string]int32{}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var wrote atomic.Int32
		ctx := httptrace.WithClientTrace(timeoutCtx(t, h1Guard), &httptrace.ClientTrace{
			WroteHeaders: func() { wrote.Add(1) },
		})
		body := ""
		if method == http.MethodPost {
			body = "b"
		}
		h1MustCall(t, tr, h1ReqCtx(t, ctx, method, s.URL+"/t", body), method+" /t "+body)
		counts[method] = wrote.Load()
	}
	return counts
}

func TestH1TraceWroteHeaders(t *testing.T) {
	for method, n := range h1TraceCount(t) {
		if n < 1 {
			t.Errorf("%s: WroteHeaders not called", method)
		}
	}
}

func TestH1TraceWroteHeadersOnce(t *testing.T) {
	for method, n := range h1TraceCount(t) {
		if n != 1 {
			t.Errorf("%s: WroteHeaders called %d times, want 1", method, n)
		}
	}
}

func TestH1DialErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		tr := newTestH1(t)
		_, err := h1RoundTripWithin(t, tr, h1Req(t, http.MethodGet, closedURL(t)+"/", ""))
		if err == nil {
			t.Fatal("got an answer from a closed port")
		}
		if _, ok := errors.AsType[*net.OpError](err); !ok || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v (%T), want the dial's *net.OpError", err, err)
		}
	})
	t.Run("cancelled while dialing", func(t *testing.T) {
		tr := newTestH1(t)
		dialing := make(chan struct{})
		var once sync.Once
		// The dial blocks, after its socket is made, until its context ends.
		tr.dialer.ControlContext = func(ctx context.Context, _, _ string, _ syscall.RawConn) error {
			once.Do(func() { close(dialing) })
			<-ctx.Done()
			return ctx.Err()
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			<-dialing
			cancel()
		}()
		_, err := h1RoundTripWithin(t, tr, h1ReqCtx(t, ctx, http.MethodGet, closedURL(t)+"/", ""))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("context already done", func(t *testing.T) {
		s := newH1Server(t, echoPath)
		tr := newTestH1(t)
		ctx, cancel := context.WithTimeout(t.Context(), -time.Second)
		defer cancel()
		_, err := h1RoundTripWithin(t, tr, h1ReqCtx(t, ctx, http.MethodGet, s.URL+"/", ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestH1NoBodyAnswerReused(t *testing.T) {
	s := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/empty":
			w.Header().Set("Content-Length", "0")
		default: // a HEAD answer announces a body it does not carry
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	})
	tr := newTestH1(t)
	cases := []struct {
		method, path string
		status       int
	}{
		{http.MethodHead, "/head", http.StatusOK},
		{http.MethodGet, "/nocontent", http.StatusNoContent},
		{http.MethodGet, "/empty", http.StatusOK},
		{http.MethodPost, "/nocontent", http.StatusNoContent},
	}
	for round := range 2 {
		for _, tc := range cases {
			body := ""
			if tc.method == http.MethodPost {
				body = "p"
			}
			resp, got, err := h1Call(tr, h1Req(t, tc.method, s.URL+tc.path, body))
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			if resp.StatusCode != tc.status || got != "" {
				t.Fatalf("%s %s: got %d %q, want %d and no body", tc.method, tc.path, resp.StatusCode, got, tc.status)
			}
			if n, _ := h1Idle(tr); n != 1 {
				t.Fatalf("round %d, %s %s: %d idle connections, want 1", round, tc.method, tc.path, n)
			}
		}
	}
	s.wantAccepted(t, 1)
}

func TestH1Concurrent(t *testing.T) {
	s := newH1Server(t, echoPath)
	tr := newTestH1(t)
	const workers, calls = 16, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				method, body := http.MethodGet, ""
				if i%3 == 0 {
					method, body = http.MethodPost, fmt.Sprintf("body-%d-%d", w, i)
				}
				path := fmt.Sprintf("/w%d/c%d", w, i)
				req, err := http.NewRequestWithContext(timeoutCtx(t, h1Guard), method, s.URL+path, strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp, got, err := h1Call(tr, req)
				if want := method + " " + path + " " + body; err != nil || resp.StatusCode != http.StatusOK || got != want {
					t.Errorf("%s %s: got %q, %v; want %q", method, path, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := s.accepted.Load(); n > workers {
		t.Fatalf("server accepted %d connections for %d concurrent callers", n, workers)
	}
}

// TestReadUpTo: a body read whole whatever its declared length says, within the limit.
func TestReadUpTo(t *testing.T) {
	for _, tc := range []struct {
		body          string
		length, limit int64
		want          string
	}{
		{"hello", 5, 100, "hello"},
		{"hello", -1, 100, "hello"},
		{"hello", -1, 3, "hel"},
		{"hello", 5, 3, "hel"},
		{"", 0, 10, ""},
		{"hello world", 5, 100, "hello world"}, // longer than it said: still whole
		{"hello world", 5, 8, "hello wo"},
	} {
		got, err := readUpTo(strings.NewReader(tc.body), tc.length, tc.limit)
		if err != nil || string(got) != tc.want {
			t.Errorf("readUpTo(%q, %d, %d) = %q, %v; want %q", tc.body, tc.length, tc.limit, got, err, tc.want)
		}
	}
	if _, err := readUpTo(strings.NewReader("hel"), 5, 100); err == nil {
		t.Error("a body shorter than its length: got no error")
	}
}

// TestH1SkipsConnectionsClosedWhileIdle: a vendor whose keep-alive timeout is shorter
// than ours closes every pooled connection; the next GETs each get an answer on a new
// connection, with no error to retry and nothing for a breaker to count.
func TestH1SkipsConnectionsClosedWhileIdle(t *testing.T) {
	const pooled = 5
	release := make(chan struct{})
	var accepted atomic.Int32
	closed := make(chan struct{}, 64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		echoPath(w, r)
	}))
	srv.Config.IdleTimeout = 20 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			accepted.Add(1)
		case http.StateClosed:
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := newTestH1(t)
	var wg sync.WaitGroup
	for range pooled { // five connections at once, then idle in the pool
		wg.Go(func() { h1MustCall(t, tr, h1Req(t, "GET", srv.URL+"/hold", ""), "GET /hold ") })
	}
	for accepted.Load() < pooled {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for range pooled { // the vendor closes each one while idle
		waitEvent(t, closed, "an idle connection closed by the vendor")
	}
	for i := range 3 {
		h1MustCall(t, tr, h1Req(t, "GET", fmt.Sprintf("%s/after/%d", srv.URL, i), ""), fmt.Sprintf("GET /after/%d ", i))
	}
}

// TestH1UnsolicitedAnswerOnIdleConnection: something a vendor sent on an idle connection
// (a 408 before closing it, at the end of its keep-alive timeout) is never taken for the
// next request's answer. checkIdleAfter is 0 here: a vendor sends that 408 only after the
// connection has been idle for seconds.
func TestH1UnsolicitedAnswerOnIdleConnection(t *testing.T) {
	idle, sent := make(chan struct{}), make(chan struct{})
	s := newRawServer(t, onFirstConn(rawOK, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		<-idle // the answer has been read: the connection is in the pool
		io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		close(sent)
		br.ReadByte() // keep it open until the client closes it
	}))
	tr := newTestH1(t)
	tr.checkIdleAfter = 0
	h1MustCall(t, tr, h1Req(t, "GET", s.URL()+"/a", ""), "ok")
	close(idle)
	waitEvent(t, sent, "the 408")
	h1MustCall(t, tr, h1Req(t, "GET", s.URL()+"/b", ""), "ok")
	s.wantRequests(t, rawReq{conn: 1, method: "GET", path: "/a"}, rawReq{conn: 2, method: "GET", path: "/b"})
}

// TestH1EarlyAnswerToUpload: a vendor that answers a large upload before reading it all
// (413) and closes: the answer is the call's, not a transport error.
func TestH1EarlyAnswerToUpload(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!")
		c.(*net.TCPConn).CloseWrite()
		// Read on a little, as servers do before closing, so that the client's writes fail
		// with a closed connection rather than the answer being lost to a reset.
		io.CopyN(io.Discard, br, 1<<20)
	})
	tr := newTestH1(t)
	resp, body, err := h1Call(tr, h1Req(t, "POST", s.URL()+"/upload", strings.Repeat("x", 8<<20)))
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || body != "too big!" {
		t.Fatalf("got %v, %q, %v; want the vendor's 413", resp, body, err)
	}
	if n, _ := h1Idle(tr); n != 0 {
		t.Errorf("%d connections pooled after an answer to a request not all sent, want 0", n)
	}
}

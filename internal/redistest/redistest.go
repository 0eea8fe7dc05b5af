// Package redistest runs a real redis-server of a test's own on a loopback port, for the
// tests of the Redis-shared limits (internal/upstream and the end-to-end ones in
// cmd/proxy). Only tests import it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

type Server struct {
	t      *testing.T
	port   int
	dir    string
	cmd    *exec.Cmd
	exited chan error
}

// Start starts a redis-server without persistence, killed when the test ends. Without
// redis-server on PATH the test is skipped, or fails when ENRICHPROXY_REQUIRE_TOOLS is set
// (CI).
func Start(t *testing.T) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("ENRICHPROXY_REQUIRE_TOOLS") != "" {
			t.Fatalf("redis-server is not on PATH (ENRICHPROXY_REQUIRE_TOOLS is set): %v", err)
		}
		t.Skip("redis-server is not on PATH")
	}
	s := &Server{t: t, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	var err error
	for range 3 { // a free port may be taken before redis-server binds it
		s.port = freeLoopbackPort(t)
		if err = s.launch(); err == nil {
			return s
		}
	}
	t.Fatal(err)
	return nil
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// launch starts redis-server on s.port and waits until it answers PING.
func (s *Server) launch() error {
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", logFile)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for pingRedis(s.port) != nil {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logFile)
			return fmt.Errorf("redis-server on port %d exited: %v\n%s", s.port, err, out)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within 10s", s.port)
		}
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.launch(); err != nil {
		s.t.Fatal(err)
	}
}

// pingRedis sends PING over a fresh connection and wants +PONG.
func pingRedis(port int) error {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freeLoopbackPort is a port nothing listens on at the moment.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Port is the server's loopback port.
func (s *Server) Port() int { return s.port }

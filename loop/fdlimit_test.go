//go:build linux

package loop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// The file descriptor tests run a server in a child process (this test
// binary again, running TestFDLimitServer) whose RLIMIT_NOFILE is lowered:
// the limit is per process, and lowering it here would starve the other
// tests.
const (
	envFDHelper  = "UPGATE_TEST_FD_HELPER"  // the child's RLIMIT_NOFILE
	envFDReserve = "UPGATE_TEST_FD_RESERVE" // the child's Options.FDReserve
	helperLimit  = 256
	floodConns   = 3 * helperLimit
)

// TestFDLimitServer is the child: an echo server under a low descriptor
// limit. It prints "addr <address>" once it listens, answers the text
// message "stats" with its counters, and exits 0 when its standard input
// closes, 3 (with the cause on standard error) when the server stops by
// itself.
func TestFDLimitServer(t *testing.T) {
	limit, err := strconv.ParseUint(os.Getenv(envFDHelper), 10, 64)
	if err != nil {
		t.Skip("runs as the child of the file descriptor tests")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	h := newTestHandler()
	var s *Server
	h.onMessage = func(c *Conn, op ws.OpCode, p []byte) {
		if string(p) == "stats" {
			st := s.Stats()
			p = fmt.Appendf(nil, "open=%d total=%d refused=%d", st.ConnsOpen, st.ConnsTotal, st.Rejected[503])
		}
		_ = c.Send(op, p)
	}
	o := testOptions()
	o.HandshakeTimeout = time.Minute
	setHelperOptions(t, &o)
	s, err = New(h, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("addr %s\n", s.Addr())
	stdin := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	select {
	case <-s.Done():
		fmt.Fprintf(os.Stderr, "server stopped by itself: %v\n", serverErr(s))
		os.Exit(3)
	case <-stdin:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}
}

// fdChild is a running TestFDLimitServer.
type fdChild struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addr   string
	stderr strings.Builder
	exited chan struct{}
	err    error
}

func startFDChild(t *testing.T, env ...string) *fdChild {
	t.Helper()
	c := &fdChild{t: t, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestFDLimitServer$", "-test.v=false")
	c.cmd.Env = append(os.Environ(), append([]string{envFDHelper + "=" + strconv.Itoa(helperLimit)}, env...)...)
	c.cmd.Stderr = &syncWriter{b: &c.stderr}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "addr "); ok {
			c.addr = a
			break
		}
	}
	go func() {
		for lines.Scan() {
		}
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	if c.addr == "" {
		<-c.exited
		t.Fatalf("the child did not start: %v\n%s", c.err, c.stderr.String())
	}
	t.Cleanup(func() {
		_ = c.stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(testTimeout):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// syncWriter is a strings.Builder written by exec's copying goroutine and
// read by the test.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// alive fails the test when the child has exited.
func (c *fdChild) alive() {
	c.t.Helper()
	select {
	case <-c.exited:
		c.t.Fatalf("the server process exited: %v\n%s", c.err, c.stderr.String())
	default:
	}
}

// dialWS completes a WebSocket handshake with the child.
func (c *fdChild) dialWS() *wsClient {
	c.t.Helper()
	nc, err := net.DialTimeout("tcp", c.addr, testTimeout)
	if err != nil {
		c.alive()
		c.t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	c.t.Cleanup(func() { _ = nc.Close() })
	w := &wsClient{t: c.t, c: nc, br: bufio.NewReader(nc)}
	w.write(upgradeRequest("/ws"))
	w.expectSwitching()
	return w
}

// childStats asks the child for its counters over w.
func (c *fdChild) childStats(w *wsClient) (open, total, refused int) {
	c.t.Helper()
	_ = w.c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := w.c.Write(msg(ws.OpText, []byte("stats"))); err != nil {
		c.alive()
		c.t.Fatalf("asking for stats: %v", err)
	}
	f, err := readServerFrame(w.br)
	if err != nil {
		c.alive()
		c.t.Fatalf("reading stats: %v", err)
	}
	if _, err := fmt.Sscanf(string(f.payload), "open=%d total=%d refused=%d", &open, &total, &refused); err != nil {
		c.t.Fatalf("bad stats %q: %v", f.payload, err)
	}
	return open, total, refused
}

// flood opens n connections to addr from a few goroutines and returns the
// ones that connected.
func flood(addr string, n int) []net.Conn {
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	for range 8 {
		wg.Go(func() {
			for range jobs {
				nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					continue
				}
				mu.Lock()
				conns = append(conns, nc)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return conns
}

// TestFDExhaustionKeepsServing opens three times more connections than the
// server's descriptor limit allows: the server must stay up, refuse what it
// cannot hold, keep serving the connections it has, and take new ones
// again once descriptors are free.
func TestFDExhaustionKeepsServing(t *testing.T) {
	c := startFDChild(t)
	w := c.dialWS()
	w.write(msg(ws.OpText, []byte("before")))
	w.expectMessage(ws.OpText, []byte("before"))

	conns := flood(c.addr, floodConns)
	defer func() {
		for _, nc := range conns {
			_ = nc.Close()
		}
	}()
	if len(conns) < helperLimit {
		c.alive()
		t.Fatalf("only %d of %d connections connected", len(conns), floodConns)
	}
	// Every connection that connected is accepted, then held or refused.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.alive()
		open, total, refused := c.childStats(w)
		if total == 1+len(conns) && open+refused == total {
			if refused == 0 {
				t.Fatalf("%d connections held, none refused, under a limit of %d descriptors", open, helperLimit)
			}
			t.Logf("%d connections held, %d refused", open, refused)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open=%d total=%d refused=%d, want total %d", open, total, refused, 1+len(conns))
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.write(msg(ws.OpText, []byte("during")))
	w.expectMessage(ws.OpText, []byte("during"))

	// A refused connection is told why before it is closed.
	got503 := 0
	for _, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(time.Millisecond))
		b := make([]byte, 256)
		n, _ := nc.Read(b)
		if s := string(b[:n]); strings.HasPrefix(s, "HTTP/1.1 503 ") && strings.Contains(s, "Retry-After: ") {
			got503++
		}
	}
	if got503 == 0 {
		t.Errorf("no refused connection read a 503 with Retry-After")
	}

	for _, nc := range conns {
		_ = nc.Close()
	}
	conns = nil
	eventually(t, "the flood's connections to close", func() bool {
		open, _, _ := c.childStats(w)
		return open == 1
	})
	w2 := c.dialWS()
	w2.write(msg(ws.OpText, []byte("after")))
	w2.expectMessage(ws.OpText, []byte("after"))
	w.write(msg(ws.OpText, []byte("still")))
	w.expectMessage(ws.OpText, []byte("still"))
}

// setHelperOptions applies the child's settings from its environment.
func setHelperOptions(*testing.T, *Options) {}

// serverErr is why s stopped.
func serverErr(*Server) error { return nil }

//go:build linux

package loop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/internal/testutil"
	"github.com/upgate/upgate/internal/wstest"
)

// The file descriptor tests run a server in a child process (this test
// binary again, running TestFDLimitServer) whose RLIMIT_NOFILE is lowered:
// the limit is per process, and lowering it here would starve the other
// tests.
const (
	envFDHelper  = "UPGATE_TEST_FD_HELPER"  // the child's RLIMIT_NOFILE
	envFDReserve = "UPGATE_TEST_FD_RESERVE" // the child's Options.FDReserve
	envFDAddr    = "UPGATE_TEST_FD_ADDR"    // the child listens there with ReusePort
	helperLimit  = 256
	floodConns   = 2 * helperLimit
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
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	h := newTestHandler()
	var s *Server
	h.onMessage = func(c Conn, op ws.OpCode, p []byte) {
		if string(p) == "stats" {
			st := s.Stats()
			p = fmt.Appendf(nil, "open=%d total=%d refused=%d pauses=%d", st.ConnsOpen, st.ConnsTotal, st.FDRefused, st.ListenerPauses)
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
	errw   *syncWriter
	exited chan struct{}
	err    error
}

func startFDChild(t *testing.T, env ...string) *fdChild {
	t.Helper()
	c := &fdChild{t: t, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestFDLimitServer$", "-test.v=false")
	c.cmd.Env = append(os.Environ(), append([]string{envFDHelper + "=" + strconv.Itoa(helperLimit)}, env...)...)
	c.errw = &syncWriter{b: &c.stderr}
	c.cmd.Stderr = c.errw
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
		t.Fatalf("the child did not start: %v\n%s", c.err, c.stderrText())
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
		c.t.Fatalf("the server process exited: %v\n%s", c.err, c.stderrText())
	default:
	}
}

// refusalLines counts the child's log lines about refused connections.
func (c *fdChild) refusalLines() int {
	n := 0
	for _, line := range strings.Split(c.stderrText(), "\n") {
		if strings.Contains(line, " connections refused (503) ") {
			n++
		}
	}
	return n
}

// loggedRefusals adds up the refusals the child logged.
func (c *fdChild) loggedRefusals() int {
	sum := 0
	for _, line := range strings.Split(c.stderrText(), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "warn: loop: %d connections refused (503) ", &n); err == nil {
			sum += n
		}
	}
	return sum
}

func (c *fdChild) stderrText() string {
	c.errw.mu.Lock()
	defer c.errw.mu.Unlock()
	return c.stderr.String()
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
	w := &wsClient{wstest.NewClient(c.t, nc)}
	w.Write(upgradeRequest("/ws"))
	w.ExpectSwitching()
	return w
}

// childStats asks the child for its counters over w.
func (c *fdChild) childStats(w *wsClient) (open, total, refused, pauses int) {
	c.t.Helper()
	_ = w.Conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := w.Conn.Write(msg(ws.OpText, []byte("stats"))); err != nil {
		c.alive()
		c.t.Fatalf("asking for stats: %v", err)
	}
	f, err := readServerFrame(w.R)
	if err != nil {
		c.alive()
		c.t.Fatalf("reading stats: %v", err)
	}
	if _, err := fmt.Sscanf(string(f.Payload), "open=%d total=%d refused=%d pauses=%d", &open, &total, &refused, &pauses); err != nil {
		c.t.Fatalf("bad stats %q: %v", f.Payload, err)
	}
	return open, total, refused, pauses
}

// floodResult is what the connections of a flood got.
type floodResult struct {
	held    []net.Conn // upgraded: 101
	refused int        // answered 503 with Retry-After
	waited  int        // not connected within floodDial, or connected but not answered: the listener was paused
	failed  []string   // anything else
}

// floodDial is how long a connection of a flood waits to be accepted, and
// floodAnswer how long it then waits for the first byte of an answer. A
// server that is full pauses its listener: its SYN is dropped and retried
// until then, or, when the SYN came in before the pause, the handshake's
// last ACK and the request are, so that the client sees a connection that
// does not answer (as when an accept queue overflows).
const (
	floodDial   = 250 * time.Millisecond
	floodAnswer = 2 * time.Second
)

// flood opens n connections to addr, a few at a time, each sending a
// WebSocket handshake and reading the answer: the accept queue never holds
// more than a few connections, so that none waits for a SYN retransmit.
func flood(addr string, n int) floodResult {
	var (
		mu  sync.Mutex
		res floodResult
		wg  sync.WaitGroup
	)
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	for range 8 {
		wg.Go(func() {
			for range jobs {
				held, why := floodOne(addr)
				mu.Lock()
				switch {
				case held != nil:
					res.held = append(res.held, held)
				case why == "":
					res.refused++
				case why == "waited":
					res.waited++
				default:
					res.failed = append(res.failed, why)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// floodOne makes one connection of a flood: it returns the connection when
// upgraded, "" when refused with 503 and Retry-After, else what happened.
func floodOne(addr string) (net.Conn, string) {
	nc, err := net.DialTimeout("tcp", addr, floodDial)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil, "waited"
	}
	if err != nil {
		return nil, err.Error()
	}
	_ = nc.SetDeadline(time.Now().Add(floodAnswer))
	if _, err := nc.Write(upgradeRequest("/ws")); err != nil {
		_ = nc.Close()
		return nil, "writing the handshake: " + err.Error()
	}
	br := bufio.NewReader(nc)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if ne, ok := err.(net.Error); ok && ne.Timeout() && head.Len() == 0 && line == "" {
			_ = nc.Close()
			return nil, "waited"
		}
		if err != nil {
			_ = nc.Close()
			return nil, fmt.Sprintf("reading the answer: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	_ = nc.SetDeadline(time.Time{})
	h := head.String()
	switch {
	case strings.HasPrefix(h, "HTTP/1.1 101 "):
		return nc, ""
	case strings.HasPrefix(h, "HTTP/1.1 503 ") && strings.Contains(h, "\r\nRetry-After: "):
		_ = nc.Close()
		return nil, ""
	}
	_ = nc.Close()
	return nil, "unexpected answer " + h
}

// TestFDExhaustionKeepsServing opens twice more connections than the
// server's descriptor limit allows: the server must stay up, refuse what it
// cannot hold with 503, keep serving the connections it has, and take new
// ones again once descriptors are free.
func TestFDExhaustionKeepsServing(t *testing.T) {
	testFDExhaustion(t, startFDChild(t))
}

// TestFDExhaustionReusePort is the same with a listener per loop, whose
// backlogs the server leaves alone: refusing in OnOpen is enough there.
func TestFDExhaustionReusePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	testFDExhaustion(t, startFDChild(t, envFDAddr+"=tcp://"+addr))
}

func testFDExhaustion(t *testing.T, c *fdChild) {
	start := time.Now()
	w := c.dialWS()
	w.Write(msg(ws.OpText, []byte("before")))
	w.ExpectMessage(ws.OpText, []byte("before"))

	res := flood(c.addr, floodConns)
	defer func() {
		for _, nc := range res.held {
			_ = nc.Close()
		}
	}()
	c.alive()
	if len(res.failed) > 0 {
		t.Fatalf("%d connections failed, the first: %s", len(res.failed), res.failed[0])
	}
	t.Logf("%d connections held, %d refused, %d waited for the paused listener", len(res.held), res.refused, res.waited)
	// A connection the client gave up on (waited) may still be accepted, and
	// answered, once the listener resumes: on a loaded machine just after
	// floodDial or floodAnswer. The server then counts it in total (or
	// refused) and open until it sees the client's close. So open must come
	// down to what the client holds, and total and refused may exceed the
	// client's counts by at most the connections it gave up on.
	held := 1 + len(res.held)
	var open, total, refused, pauses int
	testutil.Eventually(t, "the server's open count to match the connections held", func() bool {
		open, total, refused, pauses = c.childStats(w)
		return open == held
	})
	if total < held || total > held+res.waited || refused < res.refused || refused > res.refused+res.waited {
		t.Fatalf("server counts open=%d total=%d refused=%d; want %d, %d to %d, %d to %d",
			open, total, refused, held, held, held+res.waited, res.refused, res.refused+res.waited)
	}
	if res.waited > 0 && pauses == 0 {
		t.Fatalf("%d connections waited without an answer, but the server never paused its listener", res.waited)
	}
	if res.refused+res.waited == 0 || len(res.held) < helperLimit/2 {
		t.Fatalf("%d connections held, %d refused, %d waited under a limit of %d descriptors",
			len(res.held), res.refused, res.waited, helperLimit)
	}
	w.Write(msg(ws.OpText, []byte("during")))
	w.ExpectMessage(ws.OpText, []byte("during"))

	// The refusals are logged, one line a second at most.
	eventually(t, "every refusal to be logged", func() bool {
		return c.loggedRefusals() == res.refused
	})
	if n, most := c.refusalLines(), 1+int(time.Since(start)/time.Second); n > most {
		t.Errorf("%d lines about refusals in %v; want at most %d", n, time.Since(start), most)
	}

	for _, nc := range res.held[:10] {
		if _, err := nc.Write(msg(ws.OpText, []byte("held"))); err != nil {
			t.Fatalf("a held connection: %v", err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
		f, err := readServerFrame(bufio.NewReader(nc))
		if err != nil || string(f.Payload) != "held" {
			t.Fatalf("a held connection got %v, %v; want its echo", f, err)
		}
	}

	for _, nc := range res.held {
		_ = nc.Close()
	}
	res.held = nil
	eventually(t, "the flood's connections to close", func() bool {
		open, _, _, _ := c.childStats(w)
		return open == 1
	})
	w2 := c.dialWS()
	w2.Write(msg(ws.OpText, []byte("after")))
	w2.ExpectMessage(ws.OpText, []byte("after"))
	w.Write(msg(ws.OpText, []byte("still")))
	w.ExpectMessage(ws.OpText, []byte("still"))
}

// setHelperOptions applies the child's settings from its environment.
func setHelperOptions(t *testing.T, o *Options) {
	if v := os.Getenv(envFDReserve); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		o.FDReserve = n
	}
	if a := os.Getenv(envFDAddr); a != "" {
		o.Addr, o.ReusePort = a, true
	}
	o.Logger = stderrLogger{}
}

// serverErr is why s stopped.
func serverErr(s *Server) error { return s.Err() }

// stderrLogger writes warnings and errors to standard error, one per line,
// after "warn: " or "error: ".
type stderrLogger struct{ quietLogger }

func (stderrLogger) Warnf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "warn: "+format+"\n", a...)
}

func (stderrLogger) Errorf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", a...)
}

// TestFDExhaustionWithoutGuard turns the guard off: an accept then fails
// with EMFILE, which stops gnet's engine; the server must say so (Done,
// and Err naming the descriptors) instead of dying silently.
func TestFDExhaustionWithoutGuard(t *testing.T) {
	c := startFDChild(t, envFDReserve+"=-1")
	res := flood(c.addr, floodConns)
	for _, nc := range res.held {
		_ = nc.Close()
	}
	select {
	case <-c.exited:
	case <-time.After(testTimeout):
		t.Fatalf("the server survived %d connections without the guard (%d held)", floodConns, len(res.held))
	}
	code := -1
	if ee, ok := c.err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	out := c.stderrText()
	if code != 3 || !strings.Contains(out, "server stopped by itself: "+ErrEngineStopped.Error()+": ") ||
		!strings.Contains(out, " of 256 file descriptors were in use") {
		t.Fatalf("exit code %d, output:\n%s\nwant 3 and Err naming the descriptors", code, out)
	}
}

func TestDefaultFDReserve(t *testing.T) {
	for i, c := range []struct{ limit, want int }{
		{256, 64}, {1024, 64}, {4096, 128}, {20_000, 625}, {65_536, 2048}, {1 << 20, 4096},
	} {
		if got := defaultFDReserve(c.limit); got != c.want {
			t.Errorf("#%d: got %d; want %d", i, got, c.want)
		}
	}
	// A test machine holds 19,000 connections under a limit of 20,000,
	// with a hundred descriptors for everything else.
	if n := 20_000 - defaultFDReserve(20_000) - 100; n < 19_000 {
		t.Errorf("%d connections fit under 20,000 descriptors; want 19,000", n)
	}
}

// TestFDGuardBacklog drives the backlog hysteresis on a real listener and
// reads the backlog back from the kernel (ss shows it as Send-Q).
func TestFDGuardBacklog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var g fdGuard
	g.off()
	g.fds = []int{int(f.Fd())}
	g.Backlog, g.LowBacklog = 64, 8
	g.near, g.restore = 10, 5
	backlog := func() int {
		out, err := exec.Command("ss", "-ltnH", "src", ln.Addr().String()).Output()
		if err != nil {
			t.Skipf("ss: %v", err)
		}
		var state string
		var recvQ, sendQ int
		if _, err := fmt.Sscan(string(out), &state, &recvQ, &sendQ); err != nil {
			t.Fatalf("ss said %q: %v", out, err)
		}
		return sendQ
	}
	for i, c := range []struct {
		open    int64
		lowered bool
		backlog int // 0: not checked
	}{
		{1, false, 0}, {9, false, 0}, {10, true, 8}, {12, true, 8}, {6, true, 8}, {5, true, 8},
		{4, false, 64}, {9, false, 64}, {11, true, 8},
	} {
		g.watch(c.open)
		if got := g.lowered.Load(); got != c.lowered {
			t.Fatalf("#%d: open %d: got lowered %v; want %v", i, c.open, got, c.lowered)
		}
		if c.backlog != 0 {
			if got := backlog(); got != c.backlog {
				t.Fatalf("#%d: open %d: got backlog %d; want %d", i, c.open, got, c.backlog)
			}
		}
	}
	if p := g.tuneErr.Load(); p != nil {
		t.Fatal(*p)
	}
}

func TestFDLimitReported(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	s, _ := startEcho(t)
	f := s.FDLimit()
	high, low := maxBacklog(), f.Reserve/4
	if low >= high {
		high, low = 0, 0
	}
	if f.Limit != int(min(rl.Cur, math.MaxInt32)) || f.Reserve != defaultFDReserve(f.Limit) || f.InUse < 3 ||
		f.MaxConns != f.Limit-f.Reserve-f.InUse || f.Backlog != high || f.LowBacklog != low {
		t.Fatalf("got %+v under a limit of %d", f, rl.Cur)
	}

	o := testOptions()
	o.FDReserve = int(rl.Cur)
	s2, err := New(newTestHandler(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); !errors.Is(err, ErrFDLimit) {
		t.Fatalf("Start with a reserve of the whole limit: got %v; want ErrFDLimit", err)
	}

	o.FDReserve = -1
	s3 := startServer(t, newTestHandler(), o)
	if f := s3.FDLimit(); f != (FDLimit{}) {
		t.Fatalf("guard off: got %+v; want the zero FDLimit", f)
	}
}

//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

import (
	"bytes"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// The message path, driven through the real OnTraffic with a fake gnet.Conn:
// decode a masked frame (unmask in place, UTF-8 check for text), deliver it,
// echo it with Send on the loop, flush. No allocation per message.
func TestAllocsPerMessage(t *testing.T) {
	s, fc := fakeServer(t, nopHandler{})
	cases := []struct {
		name  string
		input []byte
		echo  int // bytes written back
	}{
		{"binary-128", msg(ws.OpBinary, pattern(128, false)), 4 + 128},
		{"text-128", msg(ws.OpText, pattern(128, true)), 4 + 128},
		{"binary-64K", msg(ws.OpBinary, pattern(64<<10, false)), 10 + 64<<10},
		{"ping", msg(ws.OpPing, []byte("ping")), 2 + 4},
		{"fragmented", append(clientFrame(ws.OpText, false, 0, pattern(100, true)),
			clientFrame(ws.OpContinuation, true, 0, pattern(100, true))...), 4 + 200},
		{"batch-of-10", bytes.Repeat(msg(ws.OpBinary, pattern(128, false)), 10), 10 * (4 + 128)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := func() {
				out := fc.out
				fc.feed(tc.input)
				ev(s).OnTraffic(fc)
				if fc.out-out != tc.echo {
					t.Fatalf("echoed %d bytes, want %d", fc.out-out, tc.echo)
				}
			}
			for range 100 {
				run() // warm the pools and buffers
			}
			if a := testing.AllocsPerRun(1000, run); a != 0 {
				t.Fatalf("%v allocations per message", a)
			}
		})
	}
	// A frame split over two reads goes through the connection's own
	// buffer and the decoder free list: still nothing allocated.
	t.Run("split-frame", func(t *testing.T) {
		f := msg(ws.OpBinary, pattern(1000, false))
		run := func() {
			fc.feed(f[:300])
			ev(s).OnTraffic(fc)
			fc.feed(f[300:])
			ev(s).OnTraffic(fc)
		}
		for range 100 {
			run()
		}
		if a := testing.AllocsPerRun(1000, run); a != 0 {
			t.Fatalf("%v allocations per split message", a)
		}
	})
}

// controlNop is a nopHandler that implements ControlHandler.
type controlNop struct{ nopHandler }

func (controlNop) OnPing(Conn, []byte) {}
func (controlNop) OnPong(Conn, []byte) {}

// TestAllocsPerControlFrame: a ping answered and a pong received, shown to
// a ControlHandler, allocate nothing.
func TestAllocsPerControlFrame(t *testing.T) {
	s, fc := fakeServer(t, controlNop{})
	if s.ctl == nil {
		t.Fatal("New did not find the ControlHandler")
	}
	in := append(msg(ws.OpPing, []byte("ping")), msg(ws.OpPong, []byte("pong"))...)
	run := func() {
		out := fc.out
		fc.feed(in)
		ev(s).OnTraffic(fc)
		if fc.out-out != 2+4 {
			t.Fatalf("wrote %d bytes, want a pong of 6", fc.out-out)
		}
	}
	for range 100 {
		run()
	}
	if a := testing.AllocsPerRun(1000, run); a != 0 {
		t.Fatalf("%v allocations per ping and pong", a)
	}
}

// TestAllocsPerAsyncSend: Send from another goroutine encodes into a pooled
// buffer and queues it in the loop's inbox, which the (fake) loop drains:
// nothing is allocated in steady state.
func TestAllocsPerAsyncSend(t *testing.T) {
	var fc *fakeConn
	done := make(chan struct{})
	go func() { // the "loop" goroutine is this one, not the test's
		defer close(done)
		_, fc = fakeServer(t, nopHandler{})
	}()
	<-done
	c := fc.ctx.(*conn).handle()
	p := pattern(128, false)
	frame := msg(ws.OpBinary, p) // any bytes will do for SendFrame
	for range 100 {
		_ = c.Send(ws.OpBinary, p)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if err := c.Send(ws.OpBinary, p); err != nil {
			t.Fatal(err)
		}
		if err := c.SendFrame(frame); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per async send", a)
	}
}

// TestAllocsPerHandshake: a whole connection cycle through the handler
// (OnOpen, the request parsed and answered 101 in OnTraffic, OnClose)
// allocates exactly one object: the Conn handle, which is never pooled
// because a handle may outlive its connection. Parser and decoder state
// come from the loop's free lists.
func TestAllocsPerHandshake(t *testing.T) {
	s, _ := fakeServer(t, nopHandler{})
	l := (*s.loops.Load())[0]
	fc := newFakeConn(l.el.(*fakeLoop))
	req := upgradeRequest("/ws", "Origin: http://example.com", "Sec-WebSocket-Protocol: chat")
	run := func() {
		fc.ctx = nil
		out := fc.out
		ev(s).OnOpen(fc)
		fc.feed(req)
		ev(s).OnTraffic(fc)
		if fc.out == out || !bytes.HasPrefix(fc.last, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("no 101: %q", fc.last)
		}
		ev(s).OnClose(fc, nil)
	}
	for range 100 {
		run()
	}
	if a := testing.AllocsPerRun(1000, run); a != 0 {
		t.Fatalf("%v allocations per connection cycle, want 0 (the conn is reused)", a)
	}
	// The same with the close handshake in the input: close reply, then the
	// connection ends (the fake socket cannot be shut down, so the loop
	// closes it at once).
	closing := append(append([]byte(nil), req...), msg(ws.OpClose, closePayload(1001, "bye"))...)
	run = func() {
		fc.ctx = nil
		opened := s.open.Load()
		ev(s).OnOpen(fc)
		fc.feed(closing)
		ev(s).OnTraffic(fc)
		if s.open.Load() != opened || !bytes.Equal(fc.last[len(fc.last)-4:], []byte{0x88, 2, 0x03, 0xe9}) {
			t.Fatalf("no close reply or not closed: %q", fc.last)
		}
	}
	for range 100 {
		run()
	}
	if a := testing.AllocsPerRun(1000, run); a != 0 {
		t.Fatalf("%v allocations per connection cycle with a close handshake, want 0", a)
	}
	// Plain HTTP keep-alive requests, HEAD included: nothing per request.
	ev(s).OnOpen(fc)
	for _, get := range [][]byte{
		[]byte("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
		[]byte("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
	} {
		if a := testing.AllocsPerRun(1000, func() {
			fc.feed(get)
			ev(s).OnTraffic(fc)
		}); a != 0 {
			t.Fatalf("%v allocations per keep-alive request %q", a, get[:4])
		}
	}
}

// TestAllocsPerProxiedHandshake: reading a PROXY protocol header (v1 with
// IPv4 addresses, v2) on the way to the 101 allocates nothing more than the
// Conn and the connExtra that holds the client's address (32 bytes: the
// Conn of every connection is 32 bytes smaller for it).
func TestAllocsPerProxiedHandshake(t *testing.T) {
	o := testOptions()
	o.ProxyProtocol = true
	s, err := New(nopHandler{}, o)
	if err != nil {
		t.Fatal(err)
	}
	fc := newFakeConn(&fakeLoop{srv: s})
	src := netip.MustParseAddrPort("[2001:db8::5]:1234")
	for _, header := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.7 192.0.2.1 5000 80\r\n"),
		proxyV2(1, 0x21, proxyV2Addrs(src, netip.MustParseAddrPort("[2001:db8::1]:80"))),
	} {
		in := append(append([]byte(nil), header...), upgradeRequest("/ws")...)
		run := func() {
			fc.ctx = nil
			ev(s).OnOpen(fc)
			fc.feed(in)
			ev(s).OnTraffic(fc)
			c := fc.ctx.(*conn).handle()
			if !bytes.HasPrefix(fc.last, []byte("HTTP/1.1 101 ")) || !c.ClientAddr().IsValid() || c.ClientAddr() == fakeAddr.AddrPort() {
				t.Fatalf("no 101 or no client address: %q %v", fc.last, c.ClientAddr())
			}
			ev(s).OnClose(fc, nil)
		}
		for range 100 {
			run()
		}
		if a := testing.AllocsPerRun(1000, run); a != 1 {
			t.Fatalf("%v allocations per proxied connection cycle, want 1 (its connExtra)", a)
		}
	}
}

// TestAllocsPerExecute: handing a task to a loop costs nothing of this
// package: the task goes into the loop's inbox, which reuses its storage.
func TestAllocsPerExecute(t *testing.T) {
	s, fc := fakeServer(t, nopHandler{})
	c := fc.ctx.(*conn).handle()
	p := pattern(64, false)
	ran := 0
	task := func() {
		ran++
		if err := c.Write(ws.OpBinary, p); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(1000, func() {
		if err := s.Execute(c.LoopIndex(), task); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per Execute", a)
	}
	if ran != 1001 {
		t.Fatalf("task ran %d times, want 1001", ran)
	}
}

// rawClient is a client socket made with syscalls only, so that it
// allocates nothing on the Go heap and the server's allocations and memory
// can be measured in the same process.
type rawClient struct{ fd int }

func dialSyscall(t *testing.T, sa *unix.SockaddrInet4) rawClient {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	return rawClient{fd}
}

// handshake sends req and reads until the end of the 101 head.
func (r rawClient) handshake(t *testing.T, req, buf []byte) {
	if _, err := unix.Write(r.fd, req); err != nil {
		t.Fatal(err)
	}
	got := 0
	for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
		n, err := unix.Read(r.fd, buf[got:])
		if err != nil || n <= 0 {
			t.Fatalf("read: %d %v", n, err)
		}
		got += n
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("%q", buf[:got])
	}
}

// TestConnectionCost measures, on a real engine, the heap allocations per
// connection cycle (accept, handshake, close) and the heap held per idle
// upgraded connection, server side (the clients are raw syscalls). It logs
// the numbers and only fails far above the project's targets.
func TestConnectionCost(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	o := testOptions()
	o.TimerResolution = 100 * time.Millisecond
	s := startServer(t, nopHandler{}, o)
	ta := s.Addr().(*net.TCPAddr)
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	req := upgradeRequest("/ws")
	buf := make([]byte, 4096)
	closeFrame := msg(ws.OpClose, closePayload(1000, ""))

	// Allocations per full cycle.
	const cycles = 500
	cycle := func() {
		c := dialSyscall(t, sa)
		c.handshake(t, req, buf)
		_, _ = unix.Write(c.fd, closeFrame)
		for { // close reply, then EOF
			n, err := unix.Read(c.fd, buf)
			if n <= 0 || err != nil {
				break
			}
		}
		_ = unix.Close(c.fd)
	}
	for range 50 {
		cycle()
	}
	eventually(t, "warm-up connections to close", func() bool { return s.open.Load() == 0 })
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range cycles {
		cycle()
	}
	eventually(t, "connections to close", func() bool { return s.open.Load() == 0 })
	runtime.ReadMemStats(&m1)
	perConn := float64(m1.Mallocs-m0.Mallocs) / cycles
	bytesPer := float64(m1.TotalAlloc-m0.TotalAlloc) / cycles
	t.Logf("allocations per connection cycle: %.1f objects, %.0f bytes", perConn, bytesPer)

	// The same cycles again with every allocation sampled, each named by
	// whose code made it: upgate's own code allocates nothing (the loop
	// reuses the state of closed connections); the rest is gnet's (its connection, the peer's address in two
	// forms, the poller's callback), listed so that a change there shows.
	owners := allocOwners(cycles, func() {
		cycle()
	}, func() { eventually(t, "sampled connections to close", func() bool { return s.open.Load() == 0 }) })
	for _, o := range []string{ownerUpgate, ownerGnet} {
		var total int64
		for _, site := range slices.Sorted(maps.Keys(owners[o])) {
			n := owners[o][site]
			total += n
			if o == ownerUpgate || n >= cycles/20 {
				t.Logf("  %s: %.2f per cycle at %s", o, float64(n)/cycles, site)
			}
		}
		t.Logf("%s: %.2f allocations per connection cycle", o, float64(total)/cycles)
		// A stray allocation (a free list growing, the ticker's work) is
		// tolerated: 2 % of the cycles.
		if o == ownerUpgate && total > cycles/50 {
			t.Errorf("upgate's code allocates %.2f objects per connection cycle; want 0", float64(total)/cycles)
		}
	}

	// Heap held per idle upgraded connection.
	const idle = 2000
	runtime.GC()
	runtime.ReadMemStats(&m0)
	clients := make([]rawClient, idle)
	for i := range clients {
		clients[i] = dialSyscall(t, sa)
		clients[i].handshake(t, req, buf)
	}
	eventually(t, "connections to open", func() bool { return s.Stats().WebSocketsOpen == idle })
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perIdle := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / idle
	t.Logf("heap per idle upgraded connection: %.0f bytes (Conn is %d bytes)", perIdle, sizeofConn)
	for _, c := range clients {
		_ = unix.Close(c.fd)
	}
	if perConn > 40 || perIdle > 2048 {
		t.Fatalf("per-connection cost regressed: %.1f allocations, %.0f bytes idle", perConn, perIdle)
	}
}

var sizeofConn = unsafe.Sizeof(conn{})

// TestConnSize keeps Conn within its size class on 64-bit platforms: every
// idle connection holds one.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit platforms only")
	}
	if got, want := unsafe.Sizeof(conn{}), uintptr(144); got > want {
		t.Fatalf("conn is %d bytes; want at most %d (the size class of 144)", got, want)
	}
}

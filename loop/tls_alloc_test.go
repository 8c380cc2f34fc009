//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/upgate/upgate/internal/testcert"
	"github.com/upgate/upgate/internal/wstest"
)

// A TLS connection driven through the real callbacks with a fake gnet.Conn,
// as in allocation_test.go, and a crypto/tls client on the test's side of
// it. The client encrypts outside the measured runs: only what the loop
// does with the ciphertext of a read callback is counted.

// taskLoop is a fake loop whose tasks (the inbox drains the TLS handshake
// goroutine asks for) wait for the test's goroutine to run them, as a real
// loop runs them on its own goroutine.
type taskLoop struct {
	*fakeLoop
	tasks chan gnet.Runnable
}

func (l *taskLoop) Execute(_ context.Context, r gnet.Runnable) error {
	l.tasks <- r
	return nil
}

// taskConn is a fake connection of a taskLoop.
type taskConn struct {
	*fakeConn
	el *taskLoop
}

func (c *taskConn) EventLoop() gnet.EventLoop { return c.el }

// clientPipe is the client's net.Conn: what the client writes waits in out
// for the test to hand to the server (wrote tells), what the server wrote
// is handed to in for the client to read.
type clientPipe struct {
	mu    sync.Mutex
	cond  sync.Cond
	in    []byte
	out   []byte
	wrote chan struct{}
	eof   bool // Read returns io.EOF rather than wait (after the handshake)
}

func newClientPipe() *clientPipe {
	p := &clientPipe{wrote: make(chan struct{}, 1)}
	p.cond.L = &p.mu
	return p
}

func (p *clientPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.in) == 0 {
		if p.eof {
			return 0, io.EOF // the server wrote less than the test expects
		}
		p.cond.Wait()
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *clientPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.out = append(p.out, b...)
	p.mu.Unlock()
	select {
	case p.wrote <- struct{}{}:
	default:
	}
	return len(b), nil
}

// take returns what the client wrote since the last take.
func (p *clientPipe) take() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.out
	p.out = nil
	return b
}

// give hands server bytes to the client.
func (p *clientPipe) give(b []byte) {
	if len(b) == 0 {
		return
	}
	p.mu.Lock()
	p.in = append(p.in, b...)
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *clientPipe) Close() error                     { return nil }
func (p *clientPipe) LocalAddr() net.Addr              { return fakeAddr }
func (p *clientPipe) RemoteAddr() net.Addr             { return fakeAddr }
func (p *clientPipe) SetDeadline(time.Time) error      { return nil }
func (p *clientPipe) SetReadDeadline(time.Time) error  { return nil }
func (p *clientPipe) SetWriteDeadline(time.Time) error { return nil }

// fakeTLS is a server with TLS on a fake loop, a connection on it past
// the TLS handshake and the 101, and the client at the other end.
type fakeTLS struct {
	s    *Server
	fc   *fakeConn
	gc   *taskConn
	pipe *clientPipe
	cli  *tls.Conn
	w    *wsClient
	sent int // bytes of fc.all given to the client
}

// newFakeTLS sets up a fakeTLS with version as the client's highest.
func newFakeTLS(t *testing.T, h Handler, version uint16) *fakeTLS {
	t.Helper()
	ca, leaf := testcert.Localhost(t)
	o := testOptions()
	o.TLS = leaf.ServerConfig()
	s, err := New(h, o)
	if err != nil {
		t.Fatal(err)
	}
	el := &taskLoop{fakeLoop: &fakeLoop{srv: s}, tasks: make(chan gnet.Runnable, 16)}
	fc := newFakeConn(el.fakeLoop)
	fc.keepAll = true
	fc.all = make([]byte, 0, 16<<20) // room for every run: appending allocates nothing
	f := &fakeTLS{s: s, fc: fc, gc: &taskConn{fakeConn: fc, el: el}, pipe: newClientPipe()}
	cfg := ca.ClientConfig("127.0.0.1")
	cfg.MaxVersion = version
	f.cli = tls.Client(f.pipe, cfg)
	ev(s).OnOpen(f.gc)
	done := make(chan error, 1)
	go func() { done <- f.cli.Handshake() }()
	var clientDone bool
	for !clientDone || s.Stats().TLSHandshakes == 0 {
		select {
		case <-f.pipe.wrote:
			f.traffic(f.pipe.take())
		case r := <-el.tasks:
			_ = r.Run(context.Background())
			f.flush()
		case err := <-done:
			if err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			clientDone = true
		case <-time.After(testTimeout):
			t.Fatal("the TLS handshake did not end")
		}
	}
	f.pipe.mu.Lock()
	f.pipe.eof = true
	f.pipe.mu.Unlock()
	f.w = &wsClient{wstest.NewClient(t, f.cli)}
	f.write(upgradeRequest("/ws"))
	f.w.ExpectSwitching()
	return f
}

// traffic is a read callback bringing b.
func (f *fakeTLS) traffic(b []byte) {
	f.fc.feed(b)
	ev(f.s).OnTraffic(f.gc)
	f.flush()
}

// flush gives the client what the server wrote.
func (f *fakeTLS) flush() {
	f.pipe.give(f.fc.all[f.sent:])
	f.sent = len(f.fc.all)
}

// write encrypts b as the client and hands it to the server.
func (f *fakeTLS) write(b []byte) {
	if _, err := f.cli.Write(b); err != nil {
		panic(err) // the pipe never fails
	}
	f.traffic(f.pipe.take())
}

// records returns the ciphertext of each of frames, as the client
// encrypted it, each to be the input of one read callback.
func (f *fakeTLS) records(frames [][]byte) [][]byte {
	out := make([][]byte, len(frames))
	for i, b := range frames {
		if _, err := f.cli.Write(b); err != nil {
			panic(err)
		}
		out[i] = f.pipe.take()
	}
	return out
}

// TestAllocsPerTLSMessage: over an established TLS connection, a read
// callback bringing a message (or ten) decrypted, decoded, delivered,
// echoed and encrypted allocates nothing in upgate's code. The client
// encrypts before the measured runs and decrypts after them; every
// allocation of the runs is sampled and attributed to the function that
// made it: those of the module's packages fail the test, those of the
// libraries it calls (crypto/tls) are logged.
func TestAllocsPerTLSMessage(t *testing.T) {
	const runs, sampled, warm = 1000, 200, 100
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		for _, tc := range []struct {
			name    string
			op      ws.OpCode
			payload []byte
			per     int // frames in one read callback
		}{
			{"binary-128", ws.OpBinary, pattern(128, false), 1},
			{"text-128", ws.OpText, pattern(128, true), 1},
			{"binary-64K", ws.OpBinary, pattern(64<<10, false), 1},
			{"batch-of-10", ws.OpBinary, pattern(128, false), 10},
		} {
			t.Run(tls.VersionName(version)+"/"+tc.name, func(t *testing.T) {
				f := newFakeTLS(t, nopHandler{}, version)
				frame := bytes.Repeat(msg(tc.op, tc.payload), tc.per)
				frames := make([][]byte, 2*warm+runs+1+sampled) // AllocsPerRun runs once more first
				for i := range frames {
					frames[i] = frame
				}
				in := f.records(frames)
				next := 0
				run := func() {
					out := f.fc.out
					f.fc.feed(in[next])
					next++
					ev(f.s).OnTraffic(f.gc)
					if f.fc.out == out {
						panic(fmt.Sprintf("read callback #%d: nothing echoed", next-1))
					}
				}
				for range warm {
					run()
				}
				total := testing.AllocsPerRun(runs, run)
				sites := allocSites(warm, sampled, run)
				f.flush()
				for i := range len(frames) * tc.per {
					f.w.ExpectMessage(tc.op, tc.payload)
					if t.Failed() {
						t.Fatalf("echo #%d", i)
					}
				}
				var ours, theirs []string
				for site, n := range sites {
					if 2*n < sampled {
						continue // not once per callback: a pool refilled after the GC
					}
					s := fmt.Sprintf("%s: %.2f", site, float64(n)/sampled)
					if strings.HasPrefix(site, "github.com/upgate/upgate/") {
						ours = append(ours, s)
					} else {
						theirs = append(theirs, s)
					}
				}
				slices.Sort(ours)
				slices.Sort(theirs)
				t.Logf("%v allocations per read callback; in libraries: %v", total, theirs)
				if len(ours) > 0 {
					t.Errorf("allocations per read callback in upgate's code: %v", ours)
				}
			})
		}
	}
}

// TestTLSReadAfterGC: a TLS 1.3 read callback allocates nothing even right
// after the GCs that empty the sync.Pools: the plaintext buffer is the
// loop's, lent for the callback (getPlain), not the pool's.
func TestTLSReadAfterGC(t *testing.T) {
	const runs, warm = 20, 10
	f := newFakeTLS(t, nopHandler{}, tls.VersionTLS13)
	payload := pattern(128, false)
	frames := make([][]byte, warm+runs+1)
	for i := range frames {
		frames[i] = msg(ws.OpBinary, payload)
	}
	in := f.records(frames)
	next := 0
	run := func() {
		f.fc.feed(in[next])
		next++
		ev(f.s).OnTraffic(f.gc)
	}
	for range warm {
		run()
	}
	got := testing.AllocsPerRun(runs, func() {
		runtime.GC()
		runtime.GC() // a pool keeps its objects for one more cycle
		run()
	})
	f.flush()
	for i := range frames {
		f.w.ExpectMessage(ws.OpBinary, payload)
		if t.Failed() {
			t.Fatalf("echo #%d", i)
		}
	}
	if got != 0 {
		t.Fatalf("got %v allocations per read callback after a GC; want 0", got)
	}
}

// allocSites runs fn warm times (after the GCs that empty the sync.Pools),
// then n times with every allocation sampled, and returns the objects
// allocated by allocating function and line (the first caller outside the
// runtime).
func allocSites(warm, n int, fn func()) map[string]int64 {
	before := memProfile()
	for range warm {
		fn()
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	for range n {
		fn()
	}
	runtime.MemProfileRate = old
	after := memProfile()
	sites := map[string]int64{}
	for k, m := range after {
		if d := m - before[k]; d > 0 {
			sites[k] = d
		}
	}
	return sites
}

// memProfile returns the objects allocated so far by allocating function
// and line (the first caller outside the runtime).
func memProfile() map[string]int64 { return profileBy(siteOf) }

// siteOf names the first caller outside the runtime in stack.
func siteOf(stack []uintptr) string {
	frames := runtime.CallersFrames(stack)
	for {
		fr, more := frames.Next()
		if !strings.HasPrefix(fr.Function, "runtime.") {
			return fmt.Sprintf("%s (%s:%d)", fr.Function, filepath.Base(fr.File), fr.Line)
		}
		if !more {
			return "?"
		}
	}
}

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/wstest"
)

// TestConnReuse: the state of a closed connection serves the next one the
// loop accepts, and the first connection's handle then answers as for a
// closed connection, never on behalf of the second.
func TestConnReuse(t *testing.T) {
	h := newTestHandler()
	opened := make(chan Conn, 2)
	h.onOpen = func(c Conn) { opened <- c }
	o := testOptions()
	o.NumLoops = 1
	s := startServer(t, h, o)

	a := dialWS(t, s)
	ha := <-opened
	a.CloseNormally()
	h.waitClose(t)

	b := dialWS(t, s)
	hb := <-opened
	if ha.c != hb.c {
		t.Fatal("the second connection did not reuse the first one's state")
	}
	if ha.ID() == hb.ID() || ha == hb {
		t.Fatalf("handles %v and %v of two connections are equal", ha.ID(), hb.ID())
	}
	decided := make(chan bool, 1)
	ha.Resolve(func(d *Decision, ok bool) { decided <- ok || d != nil })
	cases := []struct {
		name string
		got  any
		want any
	}{
		{"Send", ha.Send(ws.OpText, []byte("stale")), ErrClosed},
		{"SendFrame", ha.SendFrame([]byte{0x81, 1, 'x'}), ErrClosed},
		{"SendStream", ha.SendStream([]byte("x")), ErrClosed},
		{"Close", ha.Close(4001, "stale"), ErrClosed},
		{"RemoteAddr", ha.RemoteAddr() == nil, true},
		{"ClientAddr", ha.ClientAddr().IsValid(), false},
		{"AcceptedAt", ha.AcceptedAt().IsZero(), true},
		{"Compression", ha.Compression().Enabled, false},
		{"IsStream", ha.IsStream(), false},
		{"LoopIndex", ha.LoopIndex(), 0},
		{"Resolve", <-decided, false},
		{"second RemoteAddr", hb.RemoteAddr() != nil, true},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("#%d %s: got %v; want %v", i, tc.name, tc.got, tc.want)
		}
	}
	onLoop := make(chan error, 3)
	if err := s.Execute(0, func() {
		ha.SetContext("stale")
		if ha.Context() != nil || hb.Context() != nil {
			onLoop <- errors.New("a stale handle set the context of the connection that reused its state")
		}
		onLoop <- ha.Write(ws.OpText, []byte("stale"))
		onLoop <- ha.WriteClose(4001, "stale")
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-onLoop; err != ErrClosed {
			t.Errorf("on the loop: got %v; want %v", err, ErrClosed)
		}
	}
	if err := hb.Send(ws.OpText, []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	b.ExpectMessage(ws.OpText, []byte("fresh")) // and nothing of ha's before it
	b.CloseNormally()
}

// TestConnReuseRace: goroutines keep sending to, and closing, handles of
// connections that ended, while clients connect and leave through one loop
// that reuses their state. Every message carries the id of the handle it
// was sent through: a client must only ever receive its own, and never the
// close code meant for a stale handle. Run it with -race.
func TestConnReuseRace(t *testing.T) {
	const (
		clients = 8
		cycles  = 40 // connections per client
		msgs    = 3  // messages a client reads before it leaves
	)
	var (
		mu    sync.Mutex
		live  = map[uint64]Conn{}
		stale []Conn
		seen  = map[*conn]bool{}
		reuse atomic.Int64
	)
	h := newTestHandler()
	h.onOpen = func(c Conn) {
		mu.Lock()
		live[c.ID()] = c
		if seen[c.c] {
			reuse.Add(1)
		}
		seen[c.c] = true
		mu.Unlock()
		_ = c.Write(ws.OpText, []byte("id:"+strconv.FormatUint(c.ID(), 10)))
	}
	o := testOptions()
	o.NumLoops = 1
	s := startServer(t, h, o)
	stop := make(chan struct{})
	var senders sync.WaitGroup
	senders.Add(1)
	go func() {
		defer senders.Done()
		for {
			select {
			case ci := <-h.closes:
				mu.Lock()
				if c, ok := live[ci.id]; ok {
					delete(live, ci.id)
					stale = append(stale, c)
				}
				mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	errs := make(chan error, clients+3)
	for g := range 3 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var old, cur Conn
				mu.Lock()
				if n := len(stale); n > 0 {
					old = stale[rng.IntN(n)]
				}
				for _, c := range live {
					cur = c
					break
				}
				mu.Unlock()
				if !old.IsZero() {
					if err := old.Send(ws.OpText, []byte("id:"+strconv.FormatUint(old.ID(), 10))); err != ErrClosed {
						errs <- fmt.Errorf("Send through the handle of ended connection %d: %v", old.ID(), err)
						return
					}
					if err := old.Close(4001, "stale"); err != ErrClosed {
						errs <- fmt.Errorf("Close through the handle of ended connection %d: %v", old.ID(), err)
						return
					}
				}
				if !cur.IsZero() {
					_ = cur.Send(ws.OpText, []byte("id:"+strconv.FormatUint(cur.ID(), 10)))
					if rng.IntN(16) == 0 {
						_ = cur.Close(4002, "")
					}
				}
				if old.IsZero() && cur.IsZero() {
					time.Sleep(time.Millisecond) // nothing to send to yet
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range cycles {
				if err := reuseClient(s.Addr().String(), msgs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	senders.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reuse.Load() == 0 {
		t.Error("no connection reused the state of a closed one")
	}
	t.Logf("%d of %d connections reused a closed one's state", reuse.Load(), clients*cycles)
}

// reuseClient is one connection of TestConnReuseRace. Senders close live
// connections too (with 4001, through a handle that is not stale): the
// client accepts that close, but not a message of another connection.
func reuseClient(addr string, msgs int) error {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	w := wstest.NewClient(nil, c)
	if _, err := c.Write(upgradeRequest("/ws")); err != nil {
		return err
	}
	if err := readSwitching(w); err != nil {
		return err
	}
	f, err := wstest.ReadFrame(w.R)
	if err != nil {
		return err
	}
	me := string(f.Payload)
	for i := 0; ; i++ {
		if i == msgs {
			if _, err := c.Write(msg(ws.OpClose, closePayload(ws.StatusNormalClosure, ""))); err != nil {
				return nil // a sender closed it meanwhile
			}
		}
		f, err := wstest.ReadFrame(w.R)
		if err != nil {
			return nil // the server ended it after a close of a sender's
		}
		switch f.Op {
		case ws.OpText:
			if string(f.Payload) != me {
				return fmt.Errorf("connection %s received %q", me, f.Payload)
			}
		case ws.OpClose:
			if f.CloseCode() == 4001 {
				return fmt.Errorf("connection %s closed through a stale handle", me)
			}
			return nil
		default:
			return fmt.Errorf("connection %s received %v", me, f)
		}
	}
}

// readSwitching reads a 101 head from w.
func readSwitching(w *wstest.Client) error {
	line, err := w.R.ReadString('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || line[9:12] != "101" {
		return fmt.Errorf("no 101: %q", line)
	}
	for {
		l, err := w.R.ReadString('\n')
		if err != nil {
			return err
		}
		if l == "\r\n" {
			return nil
		}
	}
}

// TestConnPoolKeeps: which closed connections' state a loop keeps for
// reuse, and how many.
func TestConnPoolKeeps(t *testing.T) {
	for i, tc := range []struct {
		name    string
		kind    uint8
		pending int32 // bytes still queued for the connection at its close
		pool    int   // Options.ConnPool
		kept    bool
	}{
		{"plain", 0, 0, 0, true},
		{"stream", xfStream, 0, 0, true},
		{"TLS", xfTLS, 0, 0, false},
		{"handed over", xfHandoff, 0, 0, false},
		{"writes queued", 0, 10, 0, false},
		{"pool off", 0, 0, -1, false},
	} {
		o := testOptions()
		o.ConnPool = tc.pool
		s, err := New(nopHandler{}, o)
		if err != nil {
			t.Fatal(err)
		}
		fc := newFakeConn(&fakeLoop{srv: s})
		ev(s).OnOpen(fc)
		c := fc.ctx.(*conn)
		c.setKind(tc.kind)
		c.pending.Add(tc.pending)
		ev(s).OnClose(fc, nil)
		l := c.l
		if got := len(l.free) == 1 && l.free[0] == c; got != tc.kept {
			t.Errorf("#%d %s: kept %v; want %v", i, tc.name, got, tc.kept)
		}
		if tc.kept && (c.gc != nil || c.x.Load() != nil || c.tslot != -1 || c.req != nil) {
			t.Errorf("#%d %s: the kept state still refers to the closed connection", i, tc.name)
		}
	}

	// The bound: a loop keeps at most ConnPool states.
	o := testOptions()
	o.ConnPool = 2
	s, err := New(nopHandler{}, o)
	if err != nil {
		t.Fatal(err)
	}
	fl := &fakeLoop{srv: s}
	var fcs []*fakeConn
	for range 3 {
		fc := newFakeConn(fl)
		ev(s).OnOpen(fc)
		fcs = append(fcs, fc)
	}
	for _, fc := range fcs {
		ev(s).OnClose(fc, nil)
	}
	if n := len(fcs[0].ctx.(*conn).l.free); n != 2 {
		t.Errorf("kept %d states; want ConnPool, 2", n)
	}
}

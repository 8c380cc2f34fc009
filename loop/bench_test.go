//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// BenchmarkEchoInLoop is the in-loop message path through the real
// OnTraffic with a fake gnet.Conn: decode a masked frame (unmask in place,
// UTF-8 check for text), deliver, echo with Write, flush.
func BenchmarkEchoInLoop(b *testing.B) {
	for _, op := range []ws.OpCode{ws.OpBinary, ws.OpText} {
		for _, n := range []int{16, 128, 1024, 16 << 10, 256 << 10} {
			name := fmt.Sprintf("%s-%d", map[ws.OpCode]string{ws.OpBinary: "binary", ws.OpText: "text"}[op], n)
			b.Run(name, func(b *testing.B) {
				s, fc := fakeServer(b, nopHandler{})
				in := msg(op, pattern(n, true))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					fc.feed(in)
					ev(s).OnTraffic(fc)
				}
			})
		}
	}
}

// BenchmarkEchoInLoopBatch feeds 100 frames per read callback: the echoes
// are coalesced into few writes.
func BenchmarkEchoInLoopBatch(b *testing.B) {
	for _, n := range []int{16, 128, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, fc := fakeServer(b, nopHandler{})
			in := bytes.Repeat(msg(ws.OpBinary, pattern(n, false)), 100)
			b.SetBytes(int64(100 * n))
			b.ReportAllocs()
			for b.Loop() {
				fc.feed(in)
				ev(s).OnTraffic(fc)
			}
		})
	}
}

// BenchmarkReceiveInLoop decodes and delivers without answering.
func BenchmarkReceiveInLoop(b *testing.B) {
	for _, n := range []int{128, 16 << 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, fc := fakeServer(b, sinkHandler{})
			in := msg(ws.OpText, pattern(n, true))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				fc.feed(in)
				ev(s).OnTraffic(fc)
			}
		})
	}
}

// BenchmarkHandshakeInLoop is a connection cycle through the handler:
// OnOpen, the upgrade request parsed and answered 101, OnClose.
func BenchmarkHandshakeInLoop(b *testing.B) {
	s, _ := fakeServer(b, nopHandler{})
	fc := newFakeConn((*s.loops.Load())[0].el.(*fakeLoop))
	req := upgradeRequest("/ws", "Origin: http://example.com", "User-Agent: bench")
	b.ReportAllocs()
	for b.Loop() {
		fc.ctx = nil
		ev(s).OnOpen(fc)
		fc.feed(req)
		ev(s).OnTraffic(fc)
		ev(s).OnClose(fc, nil)
	}
}

// BenchmarkBroadcastSendFrame sends one pre-encoded frame to 1000
// connections of a loop, on the loop: the per-receiver cost of a broadcast.
func BenchmarkBroadcastSendFrame(b *testing.B) {
	s, fc0 := fakeServer(b, nopHandler{})
	conns := []Conn{fc0.ctx.(*conn).handle()}
	for range 999 {
		fc := newFakeConn(fc0.el)
		fc.buf, fc.last = nil, make([]byte, 0, 256)
		ev(s).OnOpen(fc)
		fc.feed(upgradeRequest("/ws"))
		ev(s).OnTraffic(fc)
		conns = append(conns, fc.ctx.(*conn).handle())
	}
	f := serverFrame(ws.OpText, pattern(128, true))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range conns {
			if err := c.WriteFrame(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(conns)), "ns/receiver")
}

// BenchmarkEchoTCP echoes 128-byte messages over a real connection to a
// real engine, pipelined by a writer goroutine (client and server share the
// machine's cores: a sanity number, not a measurement; see bench/).
func BenchmarkEchoTCP(b *testing.B) {
	o := testOptions()
	o.NumLoops = 1
	s := startServer(b, nopHandler{}, o)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReaderSize(c, 64<<10)
	_, _ = c.Write(upgradeRequest("/ws"))
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if len(line) == 2 {
			break
		}
	}
	frame := msg(ws.OpBinary, pattern(128, false))
	batch := bytes.Repeat(frame, 64)
	b.SetBytes(128)
	b.ReportAllocs()
	b.ResetTimer()
	// The writer stays at most 32 bursts ahead of the reader: the server
	// would rightly close a client that does not read (MaxOutbound).
	credits := make(chan struct{}, 32)
	for range cap(credits) {
		credits <- struct{}{}
	}
	done := make(chan error, 1)
	go func() {
		for left := b.N; left > 0; {
			<-credits
			n := min(left, 64)
			if _, err := c.Write(batch[:n*len(frame)]); err != nil {
				done <- err
				return
			}
			left -= n
		}
		done <- nil
	}()
	var hdr [4]byte
	buf := make([]byte, 128)
	for i := range b.N {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			credits <- struct{}{}
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// sinkHandler upgrades everything and drops messages.
type sinkHandler struct{ nopHandler }

func (sinkHandler) OnMessage(Conn, ws.OpCode, []byte) {}

//go:build linux

package tunnel

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	transferSize  = 64 << 20
	transferChunk = 32 << 10
	transferPause = 4 << 20 // the reader pauses after each of these
)

// transfer writes transferSize pseudo-random bytes with write, reads them
// with read, which pauses every transferPause bytes until the tunnel holds
// bytes it cannot deliver, and checks that every byte arrived in order and
// that the tunnel never held more than its two buffers.
func transfer(t *testing.T, f *fixture, pipeSize int, write func([]byte) error, read func([]byte) (int, error)) {
	t.Helper()
	sum := make(chan [32]byte, 1)
	werr := make(chan error, 1)
	go func() {
		rng := rand.NewChaCha8([32]byte{1})
		h := sha256.New()
		buf := make([]byte, transferChunk)
		for sent := 0; sent < transferSize; sent += len(buf) {
			rng.Read(buf)
			h.Write(buf)
			if err := write(buf); err != nil {
				werr <- err
				return
			}
		}
		sum <- [32]byte(h.Sum(nil))
	}()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	pauses := 0
	for got, mark := 0, transferPause; got < transferSize; {
		if got >= mark {
			// Held bytes show the backpressure; once the writer is done
			// the tunnel may have passed everything on.
			waitFor(t, "the tunnel to hold bytes", func() bool {
				return f.tun.Buffered() > 0 || f.tun.BytesAB()+f.tun.BytesBA() == transferSize
			})
			pauses++
			mark += transferPause
		}
		n, err := read(buf[:min(len(buf), transferSize-got)])
		h.Write(buf[:n])
		got += n
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
	}
	select {
	case want := <-sum:
		if got := [32]byte(h.Sum(nil)); got != want {
			t.Fatalf("checksum: got %x; want %x", got, want)
		}
	case err := <-werr:
		t.Fatalf("write: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("writer did not finish")
	}
	limit := int64(2*pipeSize + 2*headroom)
	if peak := f.tun.peak.Load(); peak > limit || peak == 0 {
		t.Errorf("peak bytes held: got %d; want 1 to %d", peak, limit)
	}
	t.Logf("%d pauses, peak %d bytes held", pauses, f.tun.peak.Load())
}

// connWrite and connRead adapt a net.Conn with a deadline.
func connWrite(c net.Conn) func([]byte) error {
	return func(b []byte) error {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err := c.Write(b)
		return err
	}
}

func connRead(c net.Conn) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		return c.Read(b)
	}
}

func TestRawTransferSlowReader(t *testing.T) {
	const pipeSize = 64 << 10
	for i, toUpstream := range []bool{true, false} {
		r := newReactor(t, Options{Reactors: 1, PipeSize: pipeSize})
		f := newRaw(t, r, nil)
		src, dst := f.client, f.upstream
		if !toUpstream {
			src, dst = dst, src
		}
		t.Logf("#%d: toUpstream %v", i, toUpstream)
		transfer(t, f, pipeSize, connWrite(src), connRead(dst))
	}
}

func TestWSTransferSlowReader(t *testing.T) {
	const pipeSize = 64 << 10
	for i, toUpstream := range []bool{true, false} {
		r := newReactor(t, Options{Reactors: 1, BufferSize: pipeSize})
		f, c := newGorilla(t, r, nil)
		t.Logf("#%d: toUpstream %v", i, toUpstream)
		if toUpstream {
			transfer(t, f, pipeSize, func(b []byte) error {
				c.SetWriteDeadline(time.Now().Add(20 * time.Second))
				return c.WriteMessage(websocket.BinaryMessage, b)
			}, connRead(f.upstream))
			continue
		}
		transfer(t, f, pipeSize, connWrite(f.upstream), (&messageReader{c: c}).Read)
	}
}

// messageReader reads the payload of a connection's binary messages as one
// stream.
type messageReader struct {
	c *websocket.Conn
	r io.Reader
}

func (m *messageReader) Read(b []byte) (int, error) {
	for {
		if m.r != nil {
			n, err := m.r.Read(b)
			if err == io.EOF {
				m.r, err = nil, nil
			}
			if n > 0 || err != nil {
				return n, err
			}
		}
		m.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		typ, r, err := m.c.NextReader()
		if err != nil {
			return 0, err
		}
		if typ != websocket.BinaryMessage {
			return 0, io.ErrUnexpectedEOF
		}
		m.r = r
	}
}

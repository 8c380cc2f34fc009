//go:build linux

package tunnel

import (
	"io"
	"net"
	"testing"
	"time"
)

const benchChunk = 64 << 10

// benchStream writes b.N chunks with write while a goroutine reads them
// from dst, and waits until all arrived.
func benchStream(b *testing.B, write func([]byte) error, dst io.Reader) {
	chunk := make([]byte, benchChunk)
	total := int64(b.N) * benchChunk
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, dst, total)
		done <- err
	}()
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func deadline(cs ...net.Conn) {
	for _, c := range cs {
		c.SetDeadline(time.Now().Add(5 * time.Minute))
	}
}

func BenchmarkRaw(b *testing.B) {
	r := newReactor(b, Options{Reactors: 1})
	f := newRaw(b, r, nil)
	deadline(f.client, f.upstream)
	benchStream(b, func(p []byte) error { _, err := f.client.Write(p); return err }, f.upstream)
}

func BenchmarkWebSocketAB(b *testing.B) {
	r := newReactor(b, Options{Reactors: 1})
	f, rc := newRawWS(b, r, nil)
	deadline(rc.c, f.upstream)
	in := clientFrame(0x82, make([]byte, benchChunk), false)
	benchStream(b, func(p []byte) error { _, err := rc.c.Write(in); return err }, f.upstream)
}

func BenchmarkWebSocketBA(b *testing.B) {
	r := newReactor(b, Options{Reactors: 1})
	f, rc := newRawWS(b, r, nil)
	deadline(rc.c, f.upstream)
	benchStream(b, func(p []byte) error { _, err := f.upstream.Write(p); return err }, &frameStripper{rc: rc})
}

// frameStripper reads the payload of the server's frames as one stream.
type frameStripper struct {
	rc   *rawClient
	left int
	hdr  [10]byte
}

func (s *frameStripper) Read(p []byte) (int, error) {
	for s.left == 0 {
		if _, err := io.ReadFull(s.rc.br, s.hdr[:2]); err != nil {
			return 0, err
		}
		switch n := int(s.hdr[1] & 0x7f); n {
		case 126:
			if _, err := io.ReadFull(s.rc.br, s.hdr[2:4]); err != nil {
				return 0, err
			}
			s.left = int(s.hdr[2])<<8 | int(s.hdr[3])
		case 127:
			if _, err := io.ReadFull(s.rc.br, s.hdr[2:10]); err != nil {
				return 0, err
			}
			s.left = int(s.hdr[6])<<24 | int(s.hdr[7])<<16 | int(s.hdr[8])<<8 | int(s.hdr[9])
		default:
			s.left = n
		}
	}
	n, err := s.rc.br.Read(p[:min(len(p), s.left)])
	s.left -= n
	return n, err
}

//go:build linux && !race

package tunnel

import (
	"io"
	"testing"
	"time"
)

// TestForwardingAllocs: once a tunnel runs, moving bytes through it
// allocates nothing, in the reactor or in the reader. Each run writes a
// chunk on one side and reads it whole on the other.
func TestForwardingAllocs(t *testing.T) {
	const size = 4096
	r := newReactor(t, Options{Reactors: 1})
	raw := newRaw(t, r, nil)
	wsf, rc := newRawWS(t, r, nil)
	chunk := make([]byte, size)
	frameIn := clientFrame(0x82, chunk, false)
	got := make([]byte, size+headroom)
	for i, c := range []struct {
		name string
		step func() error
	}{
		{"raw A→B", func() error {
			if _, err := raw.client.Write(chunk); err != nil {
				return err
			}
			_, err := io.ReadFull(raw.upstream, got[:size])
			return err
		}},
		{"raw B→A", func() error {
			if _, err := raw.upstream.Write(chunk); err != nil {
				return err
			}
			_, err := io.ReadFull(raw.client, got[:size])
			return err
		}},
		{"websocket A→B", func() error {
			if _, err := rc.c.Write(frameIn); err != nil {
				return err
			}
			_, err := io.ReadFull(wsf.upstream, got[:size])
			return err
		}},
		{"websocket B→A", func() error {
			if _, err := wsf.upstream.Write(chunk); err != nil {
				return err
			}
			// One read of B is one frame; a read may take less than the
			// chunk, so read the header and what it announces.
			_, err := io.ReadFull(rc.br, got[:2])
			if err != nil {
				return err
			}
			n := int(got[1])
			if n == 126 {
				if _, err := io.ReadFull(rc.br, got[2:4]); err != nil {
					return err
				}
				n = int(got[2])<<8 | int(got[3])
			}
			_, err = io.ReadFull(rc.br, got[:n])
			return err
		}},
	} {
		raw.client.SetDeadline(time.Now().Add(time.Minute))
		raw.upstream.SetDeadline(time.Now().Add(time.Minute))
		rc.c.SetDeadline(time.Now().Add(time.Minute))
		wsf.upstream.SetDeadline(time.Now().Add(time.Minute))
		var err error
		allocs := testing.AllocsPerRun(200, func() {
			if e := c.step(); e != nil && err == nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("#%d %s: %v", i, c.name, err)
		}
		if allocs != 0 {
			t.Errorf("#%d %s: got %v allocations per chunk; want 0", i, c.name, allocs)
		}
	}
}

// TestWSReaderAllocs: decoding frames allocates nothing.
func TestWSReaderAllocs(t *testing.T) {
	in := concat(clientFrame(0x02, make([]byte, 300), false), clientFrame(0x89, []byte("ping"), false),
		clientFrame(0x80, make([]byte, 70000), false))
	buf := make([]byte, len(in))
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, in)
		var r wsReader
		for b := buf; len(b) > 0; {
			_, _, n, _ := r.next(b)
			b = b[n:]
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations; want 0", allocs)
	}
}

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// writeAsync writes b (in chops of chop bytes when chop > 0) from another
// goroutine, so that the test can read the echoes while it writes.
func (w *wsClient) writeAsync(b []byte, chop int) <-chan error {
	done := make(chan error, 1)
	go func() {
		if chop <= 0 {
			chop = len(b)
		}
		for len(b) > 0 {
			n := min(chop, len(b))
			if _, err := w.Conn.Write(b[:n]); err != nil {
				done <- err
				return
			}
			b = b[n:]
		}
		done <- nil
	}()
	return done
}

func (w *wsClient) waitWrite(done <-chan error) {
	w.T.Helper()
	if err := <-done; err != nil {
		w.T.Fatalf("write: %v", err)
	}
}

// fragments splits payload into a message of frames of size bytes.
func fragments(op ws.OpCode, payload []byte, size int) []byte {
	var out []byte
	for off := 0; ; off += size {
		end := min(off+size, len(payload))
		first, last := off == 0, end == len(payload)
		fop := ws.OpContinuation
		if first {
			fop = op
		}
		out = append(out, clientFrame(fop, last, 0, payload[off:end])...)
		if last {
			return out
		}
	}
}

// TestAutobahn9Limits ports group 9 with the server's limit raised to
// 16 MiB: single-frame messages up to 16 MiB (9.1, 9.2), a fragmented
// message in fragments of 64 bytes to the whole message (9.3, 9.4), a
// 1 MiB message written in chops of 64 to 2048 bytes (9.5, 9.6) and 1000
// messages in a row of sizes 0 to 4096 (9.7, 9.8). Under the race detector
// the sizes are scaled down (race_test.go).
func TestAutobahn9Limits(t *testing.T) { autobahn9Limits(t, overTCP) }

func autobahn9Limits(t *testing.T, wr wire) {
	o := testOptions()
	o.MaxMessage = 16 << 20
	s := wr.start(t, newTestHandler(), o)
	var cases []abCase
	for g, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		for i, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20} {
			if n > ab9MaxSingle {
				break
			}
			cases = append(cases, abCase{fmt.Sprintf("9.%d.%d", g+1, i+1), func(w *wsClient) {
				p := pattern(n, op == ws.OpText)
				done := w.writeAsync(msg(op, p), 0)
				w.ExpectMessage(op, p)
				w.waitWrite(done)
				w.CloseNormally()
			}})
		}
		for i, size := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			if size > ab9Fragmented {
				break
			}
			cases = append(cases, abCase{fmt.Sprintf("9.%d.%d", g+3, i+1), func(w *wsClient) {
				p := pattern(ab9Fragmented, op == ws.OpText)
				done := w.writeAsync(fragments(op, p, size), 0)
				w.ExpectMessage(op, p)
				w.waitWrite(done)
				w.CloseNormally()
			}})
		}
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			cases = append(cases, abCase{fmt.Sprintf("9.%d.%d", g+5, i+1), func(w *wsClient) {
				p := pattern(ab9Chopped, op == ws.OpText)
				done := w.writeAsync(msg(op, p), chop)
				w.ExpectMessage(op, p)
				w.waitWrite(done)
				w.CloseNormally()
			}})
		}
		for i, size := range []int{0, 16, 64, 256, 1024, 4096} {
			cases = append(cases, abCase{fmt.Sprintf("9.%d.%d", g+7, i+1), func(w *wsClient) {
				var all bytes.Buffer
				for k := range 1000 {
					p := pattern(size, op == ws.OpText)
					if size > 0 {
						p[0] = 'a' + byte(k%26)
					}
					all.Write(msg(op, p))
				}
				done := w.writeAsync(all.Bytes(), 0)
				for k := range 1000 {
					p := pattern(size, op == ws.OpText)
					if size > 0 {
						p[0] = 'a' + byte(k%26)
					}
					w.ExpectMessage(op, p)
				}
				w.waitWrite(done)
				w.CloseNormally()
			}})
		}
	}
	runCases(t, s, cases)
}

// TestMessageTooBig: a message over the limit fails with 1009 as soon as
// its length is known, whether declared by one frame or reached by
// fragments, with the server-wide and a per-connection limit.
func TestMessageTooBig(t *testing.T) { messageTooBig(t, overTCP) }

func messageTooBig(t *testing.T, wr wire) {
	h := newTestHandler()
	h.onRequest = func(r *Request, d *Decision) bool {
		if string(r.Head.Path()) == "/small" {
			d.Upgrade(nil, nil, 1024)
			return true
		}
		return false
	}
	o := testOptions()
	o.MaxMessage = 64 << 10
	s := wr.start(t, h, o)
	big := func(path string, limit int, frames func(int) []byte) func(t *testing.T) {
		return func(t *testing.T) {
			w := s.dialRaw(t)
			w.Write(upgradeRequest(path))
			w.ExpectSwitching()
			w.Write(msg(ws.OpBinary, pattern(limit, false)))
			w.ExpectMessage(ws.OpBinary, pattern(limit, false))
			done := w.writeAsync(frames(limit+1), 0)
			w.ExpectClose(ws.StatusMessageTooBig)
			<-done // the server may have stopped reading: the error is moot
		}
	}
	single := func(n int) []byte { return msg(ws.OpBinary, pattern(n, false)) }
	frag := func(n int) []byte { return fragments(ws.OpBinary, pattern(n, false), 100) }
	t.Run("server-limit", big("/ws", 64<<10, single))
	t.Run("server-limit-fragments", big("/ws", 64<<10, func(n int) []byte {
		return fragments(ws.OpBinary, pattern(n, false), 16<<10)
	}))
	t.Run("conn-limit", big("/small", 1024, single))
	t.Run("conn-limit-fragments", big("/small", 1024, frag))
}

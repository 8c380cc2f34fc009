//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestAutobahn2PingPong ports group 2: pings with empty, text, binary and
// 125-byte payloads are answered with identical pongs; a 126-byte ping
// fails the connection with 1002; unsolicited pongs are accepted silently;
// ten pings in a row get ten pongs.
func TestAutobahn2PingPong(t *testing.T) { autobahn2PingPong(t, overTCP) }

func autobahn2PingPong(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	bin := []byte("\x00\xff\xfe\xfd\xfc\xfb\x00\xff")
	pingPong := func(p []byte) func(w *wsClient) {
		return func(w *wsClient) {
			w.Write(msg(ws.OpPing, p))
			w.ExpectPong(p)
			w.CloseNormally()
		}
	}
	cases := []abCase{
		{"2.1", pingPong(nil)},
		{"2.2", pingPong([]byte("Hello, world!"))},
		{"2.3", pingPong(bin)},
		{"2.4", pingPong(bytes.Repeat([]byte{0xfe}, 125))},
		{"2.5", func(w *wsClient) {
			w.Write(msg(ws.OpPing, bytes.Repeat([]byte{0xfe}, 126)))
			w.ExpectClose(ws.StatusProtocolError)
		}},
		{"2.6", func(w *wsClient) {
			p := bytes.Repeat([]byte{0xfe}, 125)
			w.WriteChopped(msg(ws.OpPing, p), 1, time.Millisecond/10)
			w.ExpectPong(p)
			w.CloseNormally()
		}},
		{"2.7", func(w *wsClient) {
			w.Write(msg(ws.OpPong, nil))
			w.CloseNormally() // the next frame must be the close reply
		}},
		{"2.8", func(w *wsClient) {
			w.Write(msg(ws.OpPong, []byte("unsolicited pong payload")))
			w.CloseNormally()
		}},
		{"2.9", func(w *wsClient) {
			w.Write(msg(ws.OpPong, []byte("unsolicited pong payload")), ping("ping payload"))
			w.ExpectPong([]byte("ping payload"))
			w.CloseNormally()
		}},
		{"2.10", func(w *wsClient) {
			for i := range 10 {
				w.Write(ping(fmt.Sprintf("payload-%d", i)))
			}
			for i := range 10 {
				w.ExpectPong([]byte(fmt.Sprintf("payload-%d", i)))
			}
			w.CloseNormally()
		}},
		{"2.11", func(w *wsClient) {
			for i := range 10 {
				w.WriteChopped(ping(fmt.Sprintf("payload-%d", i)), 1, time.Millisecond/10)
			}
			for i := range 10 {
				w.ExpectPong([]byte(fmt.Sprintf("payload-%d", i)))
			}
			w.CloseNormally()
		}},
	}
	runCases(t, s, cases)
}

//go:build linux

package tunnel

import (
	"testing"

	"github.com/gorilla/websocket"
)

// newGorilla returns a WebSocket tunnel whose client is a gorilla
// connection.
func newGorilla(t testing.TB, r *Reactor, extra []byte) (*fixture, *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	errs := make(chan error, 1)
	f := newWS(t, r, extra, func(addr string) {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/vnc", nil)
		if err != nil {
			errs <- err
			return
		}
		conns <- c
	})
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return f, c
	case err := <-errs:
		t.Fatalf("dial: %v", err)
	}
	return nil, nil
}

// Command gws is the lxzan/gws peer of the benchmark: gws's own server
// (gws.NewServer(...).Run) with an echo event handler, as in its README.
package main

import (
	"flag"
	"log"

	"github.com/lxzan/gws"
)

type handler struct{ gws.BuiltinEventHandler }

func (handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (handler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9004", "listen address")
	flag.Parse()
	log.Fatal(gws.NewServer(handler{}, nil).Run(*addr))
}

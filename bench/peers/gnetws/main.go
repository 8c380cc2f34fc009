// Command gnetws is the gnet + gobwas/ws peer of the benchmark, in the
// spirit of gnet's official WebSocket example: each connection copies its
// inbound bytes into its own buffer in OnTraffic, upgrades with gobwas's
// ws.Upgrade once the request head is complete, then decodes client frames
// with ws.ReadHeader/wsutil and echoes data messages with
// wsutil.WriteServerMessage, all on gnet's event loop.
package main

import (
	"bytes"
	"flag"
	"io"
	"log"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/panjf2000/gnet/v2"
)

// maxHead bounds a request head that is still incomplete.
const maxHead = 8 << 10

type codec struct {
	upgraded bool
	buf      bytes.Buffer // inbound bytes not consumed yet
}

// readWriter reads the buffered request and writes to the connection.
type readWriter struct {
	io.Reader
	io.Writer
}

type server struct {
	gnet.BuiltinEventEngine
}

func (*server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(new(codec))
	return nil, gnet.None
}

func (*server) OnTraffic(c gnet.Conn) gnet.Action {
	w := c.Context().(*codec)
	in, _ := c.Next(-1)
	w.buf.Write(in)
	if !w.upgraded {
		if !bytes.Contains(w.buf.Bytes(), []byte("\r\n\r\n")) {
			if w.buf.Len() > maxHead {
				return gnet.Close
			}
			return gnet.None
		}
		if _, err := ws.Upgrade(readWriter{&w.buf, c}); err != nil {
			return gnet.Close
		}
		w.upgraded = true
	}
	for {
		frame, ok := nextFrame(w.buf.Bytes())
		if !ok {
			return gnet.None
		}
		msgs, err := wsutil.ReadClientMessage(bytes.NewReader(frame), nil)
		w.buf.Next(len(frame))
		if err != nil {
			return gnet.Close
		}
		for _, m := range msgs {
			if m.OpCode.IsControl() {
				if err := wsutil.HandleClientControlMessage(c, m); err != nil {
					return gnet.Close
				}
				continue
			}
			if err := wsutil.WriteServerMessage(c, m.OpCode, m.Payload); err != nil {
				return gnet.Close
			}
		}
	}
}

// nextFrame returns the first complete frame of b.
func nextFrame(b []byte) ([]byte, bool) {
	r := bytes.NewReader(b)
	h, err := ws.ReadHeader(r)
	if err != nil {
		return nil, false
	}
	n := len(b) - r.Len() + int(h.Length)
	if n > len(b) {
		return nil, false
	}
	return b[:n], true
}

// quiet drops gnet's log lines below errors.
type quiet struct{}

func (quiet) Debugf(string, ...any)          {}
func (quiet) Infof(string, ...any)           {}
func (quiet) Warnf(string, ...any)           {}
func (quiet) Errorf(format string, a ...any) { log.Printf(format, a...) }
func (quiet) Fatalf(format string, a ...any) { log.Fatalf(format, a...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:9005", "listen address")
	flag.Parse()
	err := gnet.Run(&server{}, "tcp://"+*addr,
		gnet.WithLogger(quiet{}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay))
	log.Fatal(err)
}

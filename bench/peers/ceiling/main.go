// Command ceiling is the upper bound of the handshake benchmark: a gnet
// server that answers any request head (found by scanning for the blank
// line) with one canned 101 Switching Protocols, without parsing it and
// without computing Sec-WebSocket-Accept. Clients must check only the
// status line against it. After the 101 it discards whatever arrives.
//
// It takes the same kernel options as upgate's loop (TCP_DEFER_ACCEPT,
// SO_REUSEPORT listeners, loops), plus the two that the loop does not
// expose yet: the listen backlog and SO_LINGER 0 on close.
package main

import (
	"bytes"
	"flag"
	"log"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

var response = []byte("HTTP/1.1 101 Switching Protocols\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")

var crlf2 = []byte("\r\n\r\n")

// upgraded marks a connection that got its 101.
var upgraded = new(struct{})

type server struct {
	gnet.BuiltinEventEngine
	deferAccept time.Duration
	backlog     int
	linger0     bool
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	if s.deferAccept <= 0 && s.backlog <= 0 {
		return gnet.None
	}
	fd, err := eng.Dup()
	if err != nil {
		log.Fatal(err)
	}
	defer syscall.Close(fd)
	if s.deferAccept > 0 {
		secs := int((s.deferAccept + time.Second - 1) / time.Second)
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs); err != nil {
			log.Fatal(err)
		}
	}
	if s.backlog > 0 {
		// listen(2) on a listening socket sets its backlog anew.
		if err := syscall.Listen(fd, s.backlog); err != nil {
			log.Fatal(err)
		}
	}
	return gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s.linger0 {
		_ = c.SetLinger(0)
	}
	return nil, gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	if c.Context() == nil {
		if !bytes.Contains(buf, crlf2) {
			if len(buf) > 8<<10 {
				return gnet.Close
			}
			return gnet.None
		}
		c.SetContext(upgraded)
		if _, err := c.Write(response); err != nil {
			return gnet.Close
		}
	}
	_, _ = c.Discard(len(buf))
	return gnet.None
}

// quiet drops gnet's log lines below errors.
type quiet struct{}

func (quiet) Debugf(string, ...any)          {}
func (quiet) Infof(string, ...any)           {}
func (quiet) Warnf(string, ...any)           {}
func (quiet) Errorf(format string, a ...any) { log.Printf(format, a...) }
func (quiet) Fatalf(format string, a ...any) { log.Fatalf(format, a...) }

func main() {
	addr := flag.String("addr", "127.0.0.1:9006", "listen address")
	loops := flag.Int("loops", 1, "event loops")
	reuse := flag.Bool("reuseport", false, "one SO_REUSEPORT listener per loop")
	deferAccept := flag.Duration("defer-accept", 0, "TCP_DEFER_ACCEPT (0: off)")
	backlog := flag.Int("backlog", 0, "listen backlog (0: gnet's default, net.core.somaxconn)")
	linger0 := flag.Bool("linger0", false, "SO_LINGER 0: close with RST")
	flag.Parse()
	s := &server{deferAccept: *deferAccept, backlog: *backlog, linger0: *linger0}
	err := gnet.Run(s, "tcp://"+*addr,
		gnet.WithNumEventLoop(*loops),
		gnet.WithReusePort(*reuse),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(quiet{}))
	log.Fatal(err)
}

// Command writefloor is the floor of the benchmark's broadcast scenario:
// for every message a publisher sends (on -pub-path) it unmasks the payload
// once, builds the server frame once, and writes those same bytes to every
// subscriber's socket (on -path) with one write(2) each, in one tight loop
// on one goroutine locked to its thread; with -loops N, on N such
// goroutines, the subscribers split among them by descriptor. Nothing per
// subscriber but its descriptor: no framing, queueing or bookkeeping. A
// write refused with EAGAIN is counted and not retried (that subscriber
// misses the message); a short or failed write drops the subscriber.
//
// Connections are accepted by a plain accept loop (Go's net package), each
// request head answered by gobwas/ws's Upgrader on a goroutine of its own,
// with a correct Sec-WebSocket-Accept; a subscriber's descriptor then
// leaves Go's poller and belongs to its writer alone, which is why this is
// not gnet: see package bench/internal/writefloor.
//
// At SIGTERM or SIGINT it prints its counters on standard error: messages
// published, deliveries written, EAGAIN, dropped subscribers.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/upgate/upgate/bench/internal/writefloor"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9007", "listen address")
	var o writefloor.Options
	flag.IntVar(&o.Writers, "loops", 1, fmt.Sprintf("writer goroutines, each locked to its thread (1 to %d)", writefloor.MaxWriters))
	flag.StringVar(&o.Path, "path", writefloor.DefaultPath, "subscribers' request path")
	flag.StringVar(&o.PubPath, "pub-path", writefloor.DefaultPubPath, "publishers' request path")
	flag.IntVar(&o.Queue, "queue", writefloor.DefaultQueue, "messages waiting for each writer at most; a publisher waits beyond")
	flag.IntVar(&o.MaxMessage, "max-message", writefloor.DefaultMaxMessage, "largest published message in bytes")
	flag.IntVar(&o.MaxHead, "max-head", writefloor.DefaultMaxHead, "request head buffer in bytes: its longest line")
	flag.DurationVar(&o.HandshakeTimeout, "handshake-timeout", writefloor.DefaultHandshakeTimeout, "time to read a request head")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("writefloor: unexpected argument %q", flag.Arg(0))
	}
	if min(o.Writers, o.Queue, o.MaxMessage, o.MaxHead) < 1 {
		log.Fatal("writefloor: -loops, -queue, -max-message and -max-head want positive numbers")
	}
	s, err := writefloor.New(o)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	failed := make(chan error, 1)
	go func() { failed <- s.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-failed:
		if !errors.Is(err, writefloor.ErrClosed) {
			log.Print(err)
		}
	}
	_ = s.Close()
	fmt.Fprintf(os.Stderr, "writefloor: %d writer(s): %v\n", o.Writers, s.Stats())
}

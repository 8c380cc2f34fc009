package frame_test

import (
	"fmt"

	"github.com/gobwas/ws"
	"github.com/upgate/upgate/loop/frame"
)

// clientFrame encodes a frame as a client sends it: masked (RFC 6455 §5.3).
func clientFrame(op ws.OpCode, fin bool, payload string) []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := frame.AppendHeader(nil, op, fin, len(payload))
	b[1] |= 0x80
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], mask, 0)
	return b
}

// The loop an event handler runs over a connection's inbound bytes: decode
// until ErrNeedMore, answer as it goes, then discard what was consumed.
func ExampleDecoder_Next() {
	var in []byte // what Peek would return
	for _, f := range [][]byte{
		clientFrame(ws.OpText, false, "Hello, "),
		clientFrame(ws.OpPing, true, "ping!"),
		clientFrame(ws.OpContinuation, true, "world"),
		clientFrame(ws.OpClose, true, "\x03\xe8bye"),
	} {
		in = append(in, f...)
	}
	in = in[:len(in)-2] // the close frame is not all there yet

	var d frame.Decoder
	d.Init(frame.Limits{MaxMessage: 1 << 16})
	defer d.Release()

	var out []byte // what would be written back
	consumed := 0
	decode := func() {
		for {
			ev, n, err := d.Next(in[consumed:])
			if err == frame.ErrNeedMore {
				return
			}
			if err != nil {
				out = frame.AppendClose(out, frame.CodeOf(err), "")
				return
			}
			consumed += n
			switch ev.Kind {
			case frame.Message:
				fmt.Printf("message %q\n", ev.Payload)
				out = frame.AppendFrame(out, ev.Op, true, ev.Payload) // echo
			case frame.Ping:
				fmt.Printf("ping %q\n", ev.Payload)
				out = frame.AppendFrame(out, ws.OpPong, true, ev.Payload)
			case frame.Close:
				fmt.Printf("close %d %q\n", ev.Code, ev.Reason)
				out = frame.AppendClose(out, ev.Code, "")
			}
		}
	}
	decode()
	fmt.Println("need more after", consumed, "bytes")

	// The last two bytes arrive.
	in = append(in, clientFrame(ws.OpClose, true, "\x03\xe8bye")[9:]...)
	decode()
	fmt.Printf("wrote %d bytes\n", len(out))

	// Output:
	// ping "ping!"
	// message "Hello, world"
	// need more after 35 bytes
	// close 1000 "bye"
	// wrote 25 bytes
}

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// The autobahnN_test.go files port the case groups of the Autobahn|Testsuite
// fuzzingclient to raw-socket Go tests, group by group, with the case
// numbers of the suite as subtest names. Each case opens its own connection.

// abCase is one case: run sends the frames and checks the server's answers.
type abCase struct {
	id  string
	run func(w *wsClient)
}

func runCases(t *testing.T, s *Server, cases []abCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			c.run(dialWS(t, s))
		})
	}
}

// framewise writes each frame with its own write(2), pausing between them
// (pacing, so that the server reads the frames one by one).
func (w *wsClient) framewise(pause time.Duration, frames ...[]byte) {
	w.T.Helper()
	for i, f := range frames {
		if i > 0 {
			time.Sleep(pause)
		}
		w.Write(f)
	}
}

// chopped writes the frames as one byte stream in 1-byte writes.
func (w *wsClient) chopped(frames ...[]byte) {
	w.T.Helper()
	w.WriteChopped(bytes.Join(frames, nil), 1, 0)
}

// delivery is how a case sends its frames: all in one write, frame by frame
// with a pause, or one byte per write.
type delivery int

const (
	oneWrite delivery = iota
	frameWise
	oneByte
)

func (d delivery) String() string { return [...]string{"one-write", "frame-wise", "one-byte"}[d] }

func (w *wsClient) send(d delivery, frames ...[]byte) {
	w.T.Helper()
	switch d {
	case oneWrite:
		w.Write(frames...)
	case frameWise:
		w.framewise(10*time.Millisecond, frames...)
	case oneByte:
		w.chopped(frames...)
	}
}

func text(s string) []byte { return msg(ws.OpText, []byte(s)) }

func cont(fin bool, s string) []byte { return clientFrame(ws.OpContinuation, fin, 0, []byte(s)) }

func firstFrag(op ws.OpCode, s string) []byte { return clientFrame(op, false, 0, []byte(s)) }

func ping(s string) []byte { return msg(ws.OpPing, []byte(s)) }

func itoa(n int) string { return strconv.Itoa(n) }

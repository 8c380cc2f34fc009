package parser_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/gobwas/ws"
	"github.com/upgate/upgate/parser"
)

// upgrader runs the whole server side of a handshake with this package:
// parse, negotiate the upgrade, validate, choose a subprotocol, walk the
// extension offers and append the 101 response.
type upgrader struct {
	req    parser.Request
	accept [parser.AcceptLen]byte
	out    []byte
}

var (
	supportedProtocols    = []parser.Protocol{parser.WebSocket()}
	supportedSubprotocols = []string{"chat"}
)

func (u *upgrader) upgrade(in []byte) error {
	u.req.Reset()
	if _, err := u.req.Parse(in); err != nil {
		return err
	}
	if i, _ := u.req.SelectUpgrade(supportedProtocols); i < 0 {
		return errNoUpgrade
	}
	if err := u.req.CheckWebSocket(&u.accept); err != nil {
		return err
	}
	sub, err := u.req.SelectSubprotocol(supportedSubprotocols)
	if err != nil {
		return err
	}
	ext := u.req.Extensions()
	for ext.Next() {
		for {
			if _, _, ok := ext.Param(); !ok {
				break
			}
		}
	}
	if err := ext.Err(); err != nil {
		return err
	}
	u.out = parser.AppendSwitching(u.out[:0], &u.accept, sub, nil)
	return nil
}

var errNoUpgrade = &parser.Error{Status: 426, Reason: "no upgrade"}

func newUpgrader() *upgrader {
	u := &upgrader{out: make([]byte, 0, 256)}
	u.req.Init(parser.Limits{})
	return u
}

// BenchmarkUpgrade compares this package with gobwas/ws's Upgrader on the
// same request bytes. Both read the whole head, validate it, pick a
// subprotocol and produce the 101 response.
func BenchmarkUpgrade(b *testing.B) {
	for _, hs := range handshakes {
		in := []byte(hs.head)
		b.Run("upgate/"+hs.name, func(b *testing.B) {
			u := newUpgrader()
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if err := u.upgrade(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("gobwas/"+hs.name, func(b *testing.B) {
			conn := &memConn{}
			up := ws.Upgrader{
				Protocol: func(p []byte) bool { return string(p) == "chat" },
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				conn.r.Reset(in)
				if _, err := up.Upgrade(conn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse measures the request-head parser alone over the corpus.
func BenchmarkParse(b *testing.B) {
	for _, hs := range handshakes {
		in := []byte(hs.head)
		b.Run(hs.name, func(b *testing.B) {
			r := parser.NewRequest(parser.Limits{})
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				r.Reset()
				if _, err := r.Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAcceptKey measures SHA-1 + base64 of one key.
func BenchmarkAcceptKey(b *testing.B) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	var dst [parser.AcceptLen]byte
	b.ReportAllocs()
	for b.Loop() {
		parser.AcceptKey(&dst, key)
	}
}

// memConn is an in-memory connection: reads come from r, writes are dropped.
type memConn struct {
	r bytes.Reader
}

func (c *memConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) { return len(p), nil }

var _ io.ReadWriter = (*memConn)(nil)

package tlsrec

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"testing"
)

var suites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// pair returns a server Conn and the client Conn that talks to it.
func pair(t testing.TB, suite uint16) (srv, cli *Conn) {
	t.Helper()
	hf, _, _ := suiteParams(suite)
	cs := bytes.Repeat([]byte{0xc1}, hf().Size())
	ss := bytes.Repeat([]byte{0x5e}, hf().Size())
	srv, cli = new(Conn), new(Conn)
	for _, e := range []error{srv.In.Init(suite, cs), srv.Out.Init(suite, ss), cli.In.Init(suite, ss), cli.Out.Init(suite, cs)} {
		if e != nil {
			t.Fatal(e)
		}
	}
	return srv, cli
}

// decryptAll feeds b to c in pieces of at most step bytes, as a socket
// would, and returns the application data and the first error.
func decryptAll(c *Conn, b []byte, step int) ([]byte, error) {
	var out, pend []byte
	for len(b) > 0 {
		k := min(step, len(b))
		pend = append(pend, b[:k]...)
		b = b[k:]
		n, o, err := c.Decrypt(out, pend)
		out = o
		pend = pend[n:]
		if err != nil {
			return out, err
		}
	}
	if len(pend) > 0 {
		return out, io.ErrUnexpectedEOF
	}
	return out, nil
}

func TestRoundTrip(t *testing.T) {
	payloads := []int{0, 1, 125, MaxPlaintext - 1, MaxPlaintext, MaxPlaintext + 1, 70000}
	for i, suite := range suites {
		for j, size := range payloads {
			srv, cli := pair(t, suite)
			msg := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			wire, err := srv.Encrypt(nil, msg[:size/3], msg[size/3:])
			if err != nil {
				t.Fatalf("#%d/%d: Encrypt: %v", i, j, err)
			}
			records := (size + MaxPlaintext - 1) / MaxPlaintext
			if want := size + records*Overhead; len(wire) != want {
				t.Errorf("#%d/%d: got %d bytes on the wire; want %d", i, j, len(wire), want)
			}
			for _, step := range []int{1, 7, 4096, len(wire) + 1} {
				c2 := *cli
				got, err := decryptAll(&c2, wire, step)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("#%d/%d step %d: got %d bytes, %v; want %d bytes", i, j, step, len(got), err, size)
				}
			}
		}
	}
}

// TestKeyUpdate: a KeyUpdate the peer sends (in one record or split over
// two) moves the reading key; update_requested makes the next write carry
// a KeyUpdate of the server's first.
func TestKeyUpdate(t *testing.T) {
	for i, split := range []int{0, 2, 4} {
		srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
		msg := []byte{typeKeyUpdate, 0, 0, 1, 1}
		var wire []byte
		var err error
		if split > 0 {
			wire, _ = cli.Out.Seal(wire, TypeHandshake, msg[:split])
			wire, err = cli.Out.Seal(wire, TypeHandshake, msg[split:])
		} else {
			wire, err = cli.Out.Seal(wire, TypeHandshake, msg)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.Out.Update(); err != nil {
			t.Fatal(err)
		}
		wire, _ = cli.Encrypt(wire, []byte("after"))
		got, err := decryptAll(srv, wire, len(wire))
		if err != nil || string(got) != "after" {
			t.Fatalf("#%d: got %q, %v; want %q", i, got, err, "after")
		}
		if !srv.owed {
			t.Fatalf("#%d: no KeyUpdate owed after update_requested", i)
		}
		reply, _ := srv.Encrypt(nil, []byte("reply"))
		got, err = decryptAll(cli, reply, len(reply))
		if err != nil || string(got) != "reply" {
			t.Fatalf("#%d: client got %q, %v; want %q", i, got, err, "reply")
		}
		if srv.owed || srv.Out.Seq() != 1 || cli.In.Seq() != 1 {
			t.Fatalf("#%d: owed %v, server out seq %d, client in seq %d; want false, 1, 1", i, srv.owed, srv.Out.Seq(), cli.In.Seq())
		}
	}
}

// ticket returns a NewSessionTicket message with a body of n bytes.
func ticket(n int) []byte {
	return append([]byte{typeNewSessionTicket, byte(n >> 16), byte(n >> 8), byte(n)}, bytes.Repeat([]byte{7}, n)...)
}

// TestClientTickets: a client skips the NewSessionTickets a server sends,
// whole, split over records or sharing a record with a KeyUpdate, and
// reads the data behind them; a server refuses them.
func TestClientTickets(t *testing.T) {
	keyUpdate := []byte{typeKeyUpdate, 0, 0, 1, 0}
	tests := []struct {
		name   string
		frags  [][]byte // handshake record contents, in order
		data   bool     // application data behind them
		want   error
		update bool // the reading key moved
	}{
		{"one ticket", [][]byte{ticket(40)}, true, nil, false},
		{"two in one record", [][]byte{append(ticket(40), ticket(200)...)}, true, nil, false},
		{"split header", [][]byte{ticket(40)[:2], ticket(40)[2:]}, true, nil, false},
		{"split body", [][]byte{ticket(300)[:10], ticket(300)[10:100], ticket(300)[100:]}, true, nil, false},
		{"ticket then KeyUpdate", [][]byte{append(ticket(20), keyUpdate...)}, true, nil, true},
		{"body too short", [][]byte{ticket(12)}, false, ErrDecode, false},
		{"data inside a ticket", [][]byte{ticket(40)[:20]}, true, ErrUnexpected, false},
		{"unknown message", [][]byte{{8, 0, 0, 1, 0}}, false, ErrUnexpected, false},
	}
	for i, tt := range tests {
		srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
		cli.Client = true
		var wire []byte
		for _, f := range tt.frags {
			wire, _ = srv.Out.Seal(wire, TypeHandshake, f)
		}
		if tt.update {
			_ = srv.Out.Update()
		}
		if tt.data {
			wire, _ = srv.Encrypt(wire, []byte("data"))
		}
		for _, step := range []int{1, 17, len(wire)} {
			c := *cli
			got, err := decryptAll(&c, wire, step)
			if !errors.Is(err, tt.want) {
				t.Fatalf("#%d %s step %d: got %v; want %v", i, tt.name, step, err, tt.want)
			}
			if tt.want == nil && string(got) != "data" {
				t.Fatalf("#%d %s step %d: got %q; want %q", i, tt.name, step, got, "data")
			}
		}
		if tt.want == nil {
			s2, _ := pair(t, tls.TLS_AES_128_GCM_SHA256)
			s2.In = cli.In
			if _, err := decryptAll(s2, wire, len(wire)); !errors.Is(err, ErrUnexpected) {
				t.Fatalf("#%d %s: a server got %v; want %v", i, tt.name, err, ErrUnexpected)
			}
		}
	}
}

// TestUpdateAfter: the server moves to a new key on its own after
// UpdateAfter records.
func TestUpdateAfter(t *testing.T) {
	srv, cli := pair(t, tls.TLS_CHACHA20_POLY1305_SHA256)
	srv.UpdateAfter = 3
	var wire []byte
	for range 10 {
		wire, _ = srv.Encrypt(wire, []byte("x"))
	}
	got, err := decryptAll(cli, wire, 5)
	if err != nil || string(got) != "xxxxxxxxxx" {
		t.Fatalf("got %q, %v; want ten x", got, err)
	}
}

func TestDecryptErrors(t *testing.T) {
	seal := func(typ ContentType, b []byte) func(*Conn) []byte {
		return func(c *Conn) []byte { w, _ := c.Out.Seal(nil, typ, b); return w }
	}
	tests := []struct {
		name string
		wire func(cli *Conn) []byte
		want error
	}{
		{"close_notify", seal(TypeAlert, []byte{1, 0}), io.EOF},
		{"fatal alert", seal(TypeAlert, []byte{2, 40}), &PeerAlert{Alert: 40}},
		{"alert of 3 bytes", seal(TypeAlert, []byte{2, 40, 0}), ErrDecode},
		{"other handshake message", seal(TypeHandshake, []byte{4, 0, 0, 1, 0}), ErrUnexpected},
		{"empty handshake record", seal(TypeHandshake, nil), ErrUnexpected},
		{"KeyUpdate of length 2", seal(TypeHandshake, []byte{24, 0, 0, 2, 0, 0}), ErrDecode},
		{"KeyUpdate request 2", seal(TypeHandshake, []byte{24, 0, 0, 1, 2}), ErrParameter},
		{"data after KeyUpdate in its record", seal(TypeHandshake, []byte{24, 0, 0, 1, 0, 24}), ErrUnexpected},
		{"change_cipher_spec inside", seal(TypeChangeCipherSpec, []byte{1}), ErrUnexpected},
		{"unknown type", seal(99, []byte{1}), ErrUnexpected},
		{"data between handshake fragments", func(c *Conn) []byte {
			w, _ := c.Out.Seal(nil, TypeHandshake, []byte{24, 0})
			w, _ = c.Out.Seal(w, TypeApplicationData, []byte("x"))
			return w
		}, ErrUnexpected},
		{"tampered", func(c *Conn) []byte { w, _ := c.Encrypt(nil, []byte("hello")); w[7] ^= 1; return w }, ErrBadRecordMAC},
		{"wrong outer type", func(*Conn) []byte { return []byte{22, 3, 3, 0, 20} }, ErrRecordType},
		{"wrong version", func(*Conn) []byte { return []byte{23, 3, 1, 0, 20} }, ErrRecordVersion},
		{"too long", func(*Conn) []byte { return []byte{23, 3, 3, 0x41, 1} }, ErrRecordOverflow},
		{"too short for a tag", func(*Conn) []byte { return append([]byte{23, 3, 3, 0, 16}, make([]byte, 16)...) }, ErrBadRecordMAC},
		{"only padding", func(c *Conn) []byte {
			w := append([]byte{0, 0, 0, 0, 0}, 0, 0, 0)
			w, _ = c.Out.SealTail(w, 0, 0)
			return w
		}, ErrNoContentType},
	}
	for i, tt := range tests {
		srv, cli := pair(t, tls.TLS_AES_256_GCM_SHA384)
		_, err := decryptAll(srv, tt.wire(cli), 1<<20)
		var pa, wpa *PeerAlert
		if errors.As(tt.want, &wpa) {
			if !errors.As(err, &pa) || *pa != *wpa {
				t.Errorf("#%d %s: got %v; want %v", i, tt.name, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("#%d %s: got %v; want %v", i, tt.name, err, tt.want)
		}
	}
}

// TestNothingAfterClose: records behind close_notify are not read.
func TestNothingAfterClose(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	w, _ := cli.Alert(nil, AlertCloseNotify)
	w, _ = cli.Encrypt(w, []byte("late"))
	n, got, err := srv.Decrypt(nil, w)
	if err != io.EOF || len(got) != 0 || n == len(w) {
		t.Fatalf("got n=%d of %d, %q, %v; want the alert only, io.EOF", n, len(w), got, err)
	}
}

func TestAlertFor(t *testing.T) {
	tests := []struct {
		err  error
		want Alert
	}{
		{ErrBadRecordMAC, AlertBadRecordMAC},
		{ErrRecordOverflow, AlertRecordOverflow},
		{ErrRecordVersion, AlertProtocolVersion},
		{ErrRecordType, AlertUnexpectedMessage},
		{ErrNoContentType, AlertUnexpectedMessage},
		{ErrUnexpected, AlertUnexpectedMessage},
		{ErrDecode, AlertDecodeError},
		{ErrParameter, AlertIllegalParameter},
		{ErrSequence, AlertInternalError},
	}
	for i, tt := range tests {
		if got := AlertFor(tt.err); got != tt.want {
			t.Errorf("#%d: got %v; want %v", i, got, tt.want)
		}
	}
}

func TestInitErrors(t *testing.T) {
	var h Half
	if err := h.Init(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, make([]byte, 32)); err != ErrSuite {
		t.Errorf("TLS 1.2 suite: got %v; want %v", err, ErrSuite)
	}
	if err := h.Init(tls.TLS_AES_256_GCM_SHA384, make([]byte, 32)); err != ErrSecret {
		t.Errorf("short secret: got %v; want %v", err, ErrSecret)
	}
	if _, err := h.Seal(nil, TypeApplicationData, make([]byte, MaxPlaintext+1)); err != ErrTooLong {
		t.Errorf("long payload: got %v; want %v", err, ErrTooLong)
	}
}

// TestRelease: a released Conn rebuilds its AEADs and goes on.
func TestRelease(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	for i := range 3 {
		w, _ := cli.Encrypt(nil, []byte("ping"))
		got, err := decryptAll(srv, w, len(w))
		if err != nil || string(got) != "ping" {
			t.Fatalf("#%d: got %q, %v", i, got, err)
		}
		if !srv.Holding() {
			t.Fatalf("#%d: not holding after a record", i)
		}
		srv.Release()
		cli.Release()
		if srv.Holding() {
			t.Fatalf("#%d: holding after Release", i)
		}
	}
}

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"io"

	"github.com/valyala/bytebufferpool"

	"github.com/upgate/upgate/loop/tlsrec"
)

// The hand-over of a TLS 1.3 connection to the loop's record layer.
//
// crypto/tls completes the handshake (tls.go); a *tls.Conn kept afterwards
// would cost 4 to 7 KB per idle connection and 22 KB once a full record
// arrived, for good (bench/spikes/tlsmem/FINDINGS.md). So when TLS 1.3 was
// negotiated the loop takes over with package tlsrec, which needs three
// things crypto/tls documents a way to get:
//
//   - The application traffic secrets: every handshake runs with a
//     tls.Config of its own (GetConfigForClient returns a clone) whose
//     KeyLogWriter is the connection's keySink. crypto/tls writes the
//     secrets there in the NSS key log format it documents, from the
//     handshake goroutine, before Handshake returns; they stay in the
//     connection's memory and are written nowhere. (KeyLogWriter's
//     documentation warns that it compromises security: that is about
//     writing the secrets out of the process, to a file a debugger reads.
//     Here they go where crypto/tls's own record layer would keep them.)
//   - The sequence numbers: the client's first application record is its
//     number 0, since the transport never returns bytes past the end of a
//     record and so crypto/tls read nothing beyond the client's Finished;
//     the server's is the number of records crypto/tls sent under the
//     server's secret (a NewSessionTicket, or none), counted by opening the
//     handshake's output with it (tlsrec.Half.Opens).
//   - What came behind the client's Finished: still in the transport, or
//     in gnet's buffer, and decrypted by the loop.
//
// Anything else (TLS 1.2, a suite tlsrec does not run, a key log missing a
// secret, Options.TLSStdRecords) keeps the *tls.Conn.

// keySink receives a handshake's key log lines. Handshake goroutine, then
// the loop once the handshake is done.
type keySink struct {
	client, server [48]byte
	cn, sn         uint8
	chain          io.Writer // the configuration's own KeyLogWriter, if any
}

// Write implements io.Writer for tls.Config.KeyLogWriter: it keeps the
// application traffic secrets of a line "LABEL <client random> <secret>".
func (k *keySink) Write(line []byte) (int, error) {
	n := len(line)
	if k.chain != nil {
		_, _ = k.chain.Write(line)
	}
	label, rest, _ := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
	_, secret, _ := bytes.Cut(rest, []byte{' '})
	var dst []byte
	var dn *uint8
	switch string(label) {
	case "CLIENT_TRAFFIC_SECRET_0":
		dst, dn = k.client[:], &k.cn
	case "SERVER_TRAFFIC_SECRET_0":
		dst, dn = k.server[:], &k.sn
	default:
		return n, nil
	}
	if len(secret) > 2*len(dst) {
		return n, nil
	}
	m, err := hex.Decode(dst, secret)
	if err == nil {
		*dn = uint8(m)
	}
	return n, nil
}

// handoverConfig returns Options.TLS whose GetConfigForClient gives every
// handshake a clone with the connection's keySink as its KeyLogWriter,
// after the configuration's own GetConfigForClient, if any, chose.
func (s *Server) handoverConfig() *tls.Config {
	user := s.opts.TLS
	if s.opts.TLSStdRecords {
		return user
	}
	choose := user.GetConfigForClient
	base := user.Clone()
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := user
		if choose != nil {
			c, err := choose(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				cfg = c
			}
		}
		t, ok := hello.Conn.(*transport)
		if !ok {
			return cfg, nil
		}
		// Session tickets stay those of the original configuration: a
		// clone sets none of its own (tls.Config.ticketKeys).
		c := cfg.Clone()
		c.GetConfigForClient = nil
		t.keys.chain = cfg.KeyLogWriter
		c.KeyLogWriter = &t.keys
		return c, nil
	}
	return base
}

// handover replaces st's *tls.Conn by the loop's record layer when the
// handshake allows it (see above), and decrypts what came behind the
// client's Finished either way. Loop goroutine, right after the handshake.
func (l *evloop) handover(c *conn, st *tlsState) {
	t := st.tr
	cs := st.info
	k := &t.keys
	if cs.Version != tls.VersionTLS13 || !tlsrec.Supported(cs.CipherSuite) || k.cn == 0 || k.sn == 0 {
		t.sent = nil
		st.decrypt(l)
		return
	}
	r := new(tlsrec.Conn)
	if r.In.Init(cs.CipherSuite, k.client[:k.cn]) != nil || r.Out.Init(cs.CipherSuite, k.server[:k.sn]) != nil {
		t.sent = nil
		st.decrypt(l)
		return
	}
	_, l.tlsBuf = r.Out.Opens(t.sent, l.tlsBuf[:0])
	st.rec, st.conn = r, nil
	t.mu.Lock()
	left := t.in[t.off:]
	t.in, t.off, t.sent = nil, 0, nil
	t.mu.Unlock()
	st.tr = nil
	l.stats.TLSHandovers.Add(1)
	if len(left) > 0 {
		st.carry = bytebufferpool.Get()
		st.carry.B = append(st.carry.B[:0], left...)
		l.recDecrypt(c, st, nil)
	}
}

// recDecrypt decrypts the whole records of st's carried ciphertext
// followed by src (the read callback's bytes, read in place) into st's
// plaintext buffer and returns how many bytes of src it consumed: a record
// cut short stays in gnet's buffer, or in the carry when it began there.
// On close_notify or an error st.err is set; an error of the peer's gets
// its alert first. Loop goroutine.
func (l *evloop) recDecrypt(c *conn, st *tlsState, src []byte) int {
	if st.plain == nil {
		st.plain = l.getPlain()
	}
	held := st.rec.Holding()
	defer l.tlsArmIdle(c, held)
	consumed := len(src)
	var n int
	var err error
	if st.carry != nil {
		st.carry.B = append(st.carry.B, src...)
		n, st.plain.B, err = st.rec.Decrypt(st.plain.B, st.carry.B)
		st.carry.B = st.carry.B[:copy(st.carry.B, st.carry.B[n:])]
		if len(st.carry.B) == 0 {
			bytebufferpool.Put(st.carry)
			st.carry = nil
		}
	} else {
		n, st.plain.B, err = st.rec.Decrypt(st.plain.B, src)
		consumed = n
	}
	st.used = c.lastRead
	if err != nil && st.err == nil {
		st.err = err
		if err != io.EOF {
			if _, ok := err.(*tlsrec.PeerAlert); !ok {
				l.recAlert(c, st, tlsrec.AlertFor(err))
			}
		}
	}
	if len(st.plain.B) == 0 {
		l.putPlain(st)
	}
	return consumed
}

// recAlert writes alert a to c. Loop goroutine.
func (l *evloop) recAlert(c *conn, st *tlsState, a tlsrec.Alert) {
	out, err := st.rec.Alert(l.tlsBuf[:0], a)
	l.tlsBuf = out[:0]
	if err == nil {
		_, _ = c.gc.Write(out)
	}
}

// tlsChunk is the most plaintext sealed per write: four full records.
const tlsChunk = 4 * tlsrec.MaxPlaintext

// recOut seals a then b as records and writes them to c. Loop goroutine.
func (l *evloop) recOut(c *conn, st *tlsState, a, b []byte) {
	st.used = l.now
	defer l.tlsArmIdle(c, st.rec.Holding())
	for len(a)+len(b) > 0 {
		ka := min(len(a), tlsChunk)
		kb := min(len(b), tlsChunk-ka)
		out, err := st.rec.Encrypt(l.tlsBuf[:0], a[:ka], b[:kb])
		l.tlsBuf = out[:0]
		if err != nil {
			l.hardClose(c) // a sequence number exhausted: nothing more can be said
			return
		}
		_, _ = c.gc.Write(out)
		a, b = a[ka:], b[kb:]
	}
}

// tlsIdleDue returns when c's record layer drops its ciphers, if it holds
// any. Loop goroutine.
func (l *evloop) tlsIdleDue(c *conn) (uint32, bool) {
	st := c.tlsSt()
	if st == nil || st.rec == nil || l.srv.tlsIdle == 0 || !st.rec.Holding() {
		return 0, false
	}
	last := st.used
	if before(last, c.lastRead) {
		last = c.lastRead
	}
	return last + l.srv.tlsIdle, true
}

// tlsArmIdle brings c's timer forward to when its ciphers, just rebuilt
// (held was false), are to be dropped, unless c's timer is firing now
// (fire re-arms it) or due earlier. Loop goroutine.
func (l *evloop) tlsArmIdle(c *conn, held bool) {
	if held || c.tslot < 0 || c.phase() != stOpen {
		return
	}
	if at, ok := l.tlsIdleDue(c); ok && before(at, c.tat) {
		l.schedule(c, at)
	}
}

// tlsQuiet drops the ciphers of a connection just upgraded (head: its
// read callback began with the request head) that has nothing more to
// read: a fresh WebSocket connection mostly goes quiet, and a fleet of
// them that keeps its ciphers for TLSCipherIdle each holds some 2.5 KB
// more per connection while it connects. The first message rebuilds them.
// Loop goroutine.
func (l *evloop) tlsQuiet(c *conn, head bool) {
	st := c.tlsSt()
	if !head || st == nil || st.rec == nil || c.phase() != stOpen || l.srv.tlsIdle == 0 ||
		st.plain != nil || st.carry != nil || c.gc.InboundBuffered() > 0 || !st.rec.Holding() {
		return
	}
	st.rec.Release()
	l.stats.TLSCipherReleases.Add(1)
}

// tlsIdleCheck drops c's ciphers once it went TLSCipherIdle without a
// record. Loop goroutine, from c's timer.
func (l *evloop) tlsIdleCheck(c *conn) {
	if at, ok := l.tlsIdleDue(c); ok && !before(l.now, at) {
		c.tlsSt().rec.Release()
		l.stats.TLSCipherReleases.Add(1)
	}
}

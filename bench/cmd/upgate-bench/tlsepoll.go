package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop/tlsrec"
)

// wss:// echo on the epoll engine. crypto/tls runs each handshake on a
// goroutine as for the other TLS scenarios; then the connection's socket
// moves to the engine, which seals and opens its records with
// tlsrec.Conn in client mode, keyed by the traffic secrets crypto/tls
// wrote to the configuration's KeyLogWriter (its documented key log,
// kept in memory). For the engine's record sequence numbers to be right,
// crypto/tls must not have read any record past the handshake:
// recordReader hands it one record at a time, so that the server's
// NewSessionTickets (sent right behind its Finished) stay in the socket
// for tlsrec, which skips them.

// recordReader gives crypto/tls one TLS record at most per Read.
type recordReader struct {
	net.Conn
	hdr  [tlsrec.HeaderLen]byte
	hoff int // bytes of hdr returned so far; HeaderLen when between records
	rem  int // bytes of the current record's body still to read
}

func (r *recordReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.hoff == len(r.hdr) && r.rem == 0 {
		if _, err := io.ReadFull(r.Conn, r.hdr[:]); err != nil {
			return 0, err
		}
		r.hoff, r.rem = 0, int(binary.BigEndian.Uint16(r.hdr[3:]))
	}
	if r.hoff < len(r.hdr) {
		n := copy(p, r.hdr[r.hoff:])
		r.hoff += n
		return n, nil
	}
	n, err := r.Conn.Read(p[:min(len(p), r.rem)])
	r.rem -= n
	return n, err
}

// trafficSecrets keeps a connection's TLS 1.3 application traffic secrets
// from crypto/tls's key log (NSS format: label, client random, secret).
type trafficSecrets struct {
	client, server []byte
}

func (k *trafficSecrets) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	var dst *[]byte
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		dst = &k.client
	case "SERVER_TRAFFIC_SECRET_0":
		dst = &k.server
	default:
		return len(line), nil
	}
	s, err := hex.AppendDecode(nil, f[2])
	if err != nil {
		return 0, err
	}
	*dst = s
	return len(line), nil
}

// errNoSecrets is a handshake that logged no TLS 1.3 traffic secrets.
var errNoSecrets = errors.New("no TLS 1.3 traffic secrets in the key log")

// records returns the client's record layer for the negotiated suite.
func (k *trafficSecrets) records(suite uint16) (*tlsrec.Conn, error) {
	if k.client == nil || k.server == nil {
		return nil, errNoSecrets
	}
	rec := &tlsrec.Conn{Client: true}
	if err := rec.Out.Init(suite, k.client); err != nil {
		return nil, err
	}
	if err := rec.In.Init(suite, k.server); err != nil {
		return nil, err
	}
	return rec, nil
}

// adopt moves an upgraded wss:// connection to the engine: a duplicate of
// its socket joins the poller and w's Go connection is closed (the socket
// lives on in the duplicate, already non-blocking). Plaintext and records
// w read past the 101 go with it.
func (e *engine) adopt(w *wssConn) error {
	if w.rec == nil {
		return errors.New("adopt: the connection keeps its records in crypto/tls")
	}
	rc, err := w.raw.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	if cerr := rc.Control(func(s uintptr) { fd, err = unix.Dup(int(s)) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	w.close()
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return err
	}
	if fd >= len(e.conns) {
		_ = unix.Close(fd)
		return fmt.Errorf("adopt: descriptor %d beyond the engine's table", fd)
	}
	c := e.getConn()
	c.fd, c.state, c.tls = fd, stOpen, w.rec
	c.in = append(c.in[:0], w.in...)
	c.sealed = append(c.sealed[:0], w.sealed...)
	if err := e.p.Add(fd); err != nil {
		_ = unix.Close(fd)
		c.state, c.tls = stFree, nil
		e.free = append(e.free, c)
		return err
	}
	e.conns[fd] = c
	e.open++
	e.h.opened(c)
	if c.state == stOpen && len(c.in) > 0 {
		e.frames(c)
	}
	return nil
}

// runTLSEcho opens -n wss:// connections with crypto/tls handshakes, hands
// them to the epoll engine and measures echo there, as runEcho does over
// ws://.
func runTLSEcho(cfg *config, pr *progress) (*Result, error) {
	t, err := newTLSClient(cfg)
	if err != nil {
		return nil, err
	}
	t.records = true
	defer t.closeAll()
	h, err := newEchoHooks(cfg)
	if err != nil {
		return nil, err
	}
	e := h.e
	defer e.p.Close()
	defer e.closeAll()
	pr.phase("connect", int64(cfg.conns))
	var ferr error
	ticking(func() {
		ferr = t.fill(cfg.conns, cfg.concurrency, time.Minute, func(*wssConn) {})
	}, func(time.Duration) { pr.set(int64(t.openConns()), "") })
	if ferr != nil {
		return nil, ferr
	}
	t.mu.Lock()
	open := t.open
	t.open = nil
	t.mu.Unlock()
	for i, w := range open {
		if err := e.adopt(w); err != nil {
			for _, rest := range open[i:] {
				rest.close()
			}
			return nil, err
		}
	}
	if err := e.idle(cfg.warmup); err != nil {
		return nil, err
	}
	r := newTLSResult(cfg)
	err = h.measure(cfg, pr, r, "tls-echo")
	t.fillResult(r)
	r.HandshakeLatency = nil // the connections opened before counting
	r.Failed += e.failed
	for k, v := range e.errs {
		if r.Errors == nil {
			r.Errors = map[string]int64{}
		}
		r.Errors[k] += v
	}
	return r, err
}

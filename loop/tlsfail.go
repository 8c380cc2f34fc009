//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/upgate/upgate/loop/tlsrec"
)

// TLSFailure is why a TLS handshake failed, as Snapshot.TLSFailuresBy
// counts it. Its String is a Prometheus label value.
type TLSFailure uint8

// Reasons of failed TLS handshakes. Every failure ends with the TLS alert
// crypto/tls writes, if any (not_tls with a 400), then a close.
const (
	// TLSFailHandshake is any failure not named below ("handshake"):
	// no cipher suite in common, a bad message later in the handshake,
	// more ciphertext than the handshake may hold.
	TLSFailHandshake TLSFailure = iota
	// TLSFailNotTLS is plaintext HTTP sent to the TLS listener
	// ("not_tls"), answered 400 as net/http answers it.
	TLSFailNotTLS
	// TLSFailBadRecord is a first record that is not TLS, or not a
	// handshake: garbage ("bad_record").
	TLSFailBadRecord
	// TLSFailBadHello is a ClientHello crypto/tls could not decode
	// ("bad_hello").
	TLSFailBadHello
	// TLSFailTimeout is a handshake not done within
	// Options.HandshakeTimeout: a stalled client ("timeout").
	TLSFailTimeout
	// TLSFailClientGone is a client that closed or reset its connection
	// mid-handshake ("client_gone").
	TLSFailClientGone
	// TLSFailUnknownSNI is a server name with no certificate, refused
	// ("unknown_sni"): Options.TLSFailureOf names it, the loop cannot
	// tell it from the error of a tls.Config callback.
	TLSFailUnknownSNI
	// TLSFailClientCertificate is a client certificate missing, or not
	// verified, where one is required ("client_certificate").
	TLSFailClientCertificate
	// TLSFailClientAlert is an alert from the client ("client_alert"):
	// mostly a client that does not trust the server's certificate.
	TLSFailClientAlert
	// TLSFailVersion is a client with no TLS version in common with the
	// server (an old client, or one under Config.MinVersion) ("version").
	TLSFailVersion

	// NumTLSFailures is the number of reasons: the length of
	// Snapshot.TLSFailuresBy.
	NumTLSFailures = iota
)

var tlsFailureNames = [NumTLSFailures]string{
	TLSFailHandshake:         "handshake",
	TLSFailNotTLS:            "not_tls",
	TLSFailBadRecord:         "bad_record",
	TLSFailBadHello:          "bad_hello",
	TLSFailTimeout:           "timeout",
	TLSFailClientGone:        "client_gone",
	TLSFailUnknownSNI:        "unknown_sni",
	TLSFailClientCertificate: "client_certificate",
	TLSFailClientAlert:       "client_alert",
	TLSFailVersion:           "version",
}

// String returns the reason's label value, e.g. "not_tls".
func (f TLSFailure) String() string {
	if int(f) < len(tlsFailureNames) {
		return tlsFailureNames[f]
	}
	return "TLSFailure(" + strconv.Itoa(int(f)) + ")"
}

// notTLSResponse answers plaintext HTTP sent to the TLS listener, as
// net/http's server does.
var notTLSResponse = []byte("HTTP/1.0 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n\r\n" +
	"Client sent an HTTP request to an HTTPS port.\n")

// classifyTLS returns the reason of a failed handshake's error: of's, when
// it names one, else the loop's reading of crypto/tls's errors and of
// alert, the code of the alert the server wrote in plaintext (-1: none).
// crypto/tls types few errors (RecordHeaderError,
// CertificateVerificationError, a client's alert in a net.OpError); two
// others are known by their text, which a Go release may change: the
// reason is then TLSFailHandshake, and TestClassifyTLS, which makes each
// failure for real, says so.
func classifyTLS(err error, alert int, of func(error) (TLSFailure, bool)) TLSFailure {
	if of != nil {
		if r, ok := of(err); ok && r < NumTLSFailures {
			return r
		}
	}
	if errors.Is(err, errTransportClosed) {
		return TLSFailClientGone
	}
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		switch {
		case rh.Conn != nil && looksLikeHTTP(rh.RecordHeader):
			return TLSFailNotTLS
		case rh.RecordHeader[0] == 0x80:
			return TLSFailVersion // an SSLv2 ClientHello
		}
		return TLSFailBadRecord
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return TLSFailClientCertificate
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" {
		return TLSFailClientAlert
	}
	// The alert the server sent before any key was set, read off the wire
	// (RFC 8446 §6): crypto/tls's error does not export its code.
	switch alert {
	case int(tlsrec.AlertDecodeError):
		return TLSFailBadHello
	case int(tlsrec.AlertProtocolVersion):
		return TLSFailVersion
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "offered only unsupported versions"):
		return TLSFailVersion
	case strings.Contains(msg, "didn't provide a certificate"):
		return TLSFailClientCertificate
	}
	return TLSFailHandshake
}

// looksLikeHTTP reports whether a first record header is the start of an
// HTTP request (net/http's test, and the other common methods).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "PATCH", "DELET", "CONNE", "TRACE":
		return true
	}
	return false
}

// tlsFailed counts c's failed handshake once, for reason r. Loop goroutine.
func (l *evloop) tlsFailed(c *conn, r TLSFailure) {
	if c.tlsEnded {
		return
	}
	c.tlsEnded = true
	if l.srv.stopping.Load() {
		return // the server ended it
	}
	l.stats.tlsFailed(r)
}

// handshakeFailed runs on the loop once c's handshake goroutine failed: the
// failure is counted, unless the loop ended the handshake itself and
// counted it then, and the connection closes after the alert crypto/tls
// wrote (through the inbox, before this), or the 400 of not_tls. Loop
// goroutine.
func (l *evloop) handshakeFailed(c *conn, err error) {
	if !c.tlsEnded {
		r := classifyTLS(err, c.tlsSt().tr.sentAlert(), l.srv.opts.TLSFailureOf)
		l.tlsFailed(c, r)
		if r == TLSFailNotTLS && c.phase() == stHead {
			_, _ = c.gc.Write(notTLSResponse)
			l.stats.reject(400)
		}
	}
	if c.phase() == stClosed {
		return
	}
	c.tlsSt().tr.Close()
	l.beginLinger(c)
}

// tlsClosed runs as c closes, before its transport is closed. A handshake
// in progress that the loop did not end (timeout, drain, PROXY error) was
// ended by the client: its goroutine returns and handshakeDone counts the
// failure, client_gone when the closed transport ended it. But a client
// often sends an alert and closes at once, and closing the transport drops
// the ciphertext the goroutine did not read yet: an alert record waiting
// there is counted here. Loop goroutine.
func (l *evloop) tlsClosed(c *conn) {
	if c.kind()&xfTLS == 0 || c.tlsSt() == nil || c.tlsSt().ready || c.tlsEnded {
		return
	}
	if c.tlsSt().conn == nil {
		// Closed by the client before its first record was whole: no
		// goroutine ran to report it.
		l.tlsFailed(c, TLSFailClientGone)
		return
	}
	t := c.tlsSt().tr
	t.mu.Lock()
	alert := len(t.in) > t.off && t.in[t.off] == byte(tlsrec.TypeAlert) &&
		t.left == 0 && t.hn%tlsrec.HeaderLen == 0 // at a record's start
	t.mu.Unlock()
	if alert {
		l.tlsFailed(c, TLSFailClientAlert)
	}
}

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"crypto/tls"
	"crypto/x509"
)

// TLSInfo describes a connection's TLS session: what crypto/tls's
// ConnectionState said of it once the handshake was done.
type TLSInfo struct {
	Version            uint16 // tls.VersionTLS12 or tls.VersionTLS13
	CipherSuite        uint16
	ServerName         string // the name the client asked for (SNI), if any
	NegotiatedProtocol string // ALPN, if any
	DidResume          bool   // a resumed session (session ticket)
	// PeerCertificates is the client's certificate chain, leaf first,
	// when the configuration asked for one (mutual TLS).
	PeerCertificates []*x509.Certificate
}

// newTLSInfo keeps what TLSInfo needs of cs.
func newTLSInfo(cs *tls.ConnectionState) *TLSInfo {
	return &TLSInfo{
		Version:            cs.Version,
		CipherSuite:        cs.CipherSuite,
		ServerName:         cs.ServerName,
		NegotiatedProtocol: cs.NegotiatedProtocol,
		DidResume:          cs.DidResume,
		PeerCertificates:   cs.PeerCertificates,
	}
}

// TLS returns the connection's TLS session: nil for a connection of a
// plain listener (and possibly once OnClose returned). The TLSInfo is set
// before Handler.OnRequest and never modified after; any goroutine may
// read it from then on.
func (h Conn) TLS() *TLSInfo {
	c := h.c
	if c == nil {
		return nil
	}
	st := c.tlsSt()
	if st == nil || c.id.Load() != h.id {
		return nil
	}
	return st.info
}

package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// startClient runs a crypto/tls client over an in-memory pipe and returns the
// pipe ends plus the ClientHello handshake message (record header removed).
func startClient(cfg *tls.Config) (sc, cc *memConn, ch []byte, errc chan error) {
	sc, cc = newPair()
	cli := tls.Client(cc, cfg)
	errc = make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	for {
		sc.mu.Lock()
		if len(sc.in) >= 5 {
			n := 5 + int(binary.BigEndian.Uint16(sc.in[3:5]))
			if len(sc.in) >= n {
				ch = append([]byte{}, sc.in[5:n]...)
				sc.in = sc.in[n:]
				sc.mu.Unlock()
				return
			}
		}
		sc.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// chExtensions returns the offset of the extensions block of a ClientHello message.
func chExtOffset(ch []byte) int {
	p := 4 + 2 + 32
	p += 1 + int(ch[p])
	p += 2 + int(binary.BigEndian.Uint16(ch[p:]))
	p += 1 + int(ch[p])
	return p
}

func listExts(msg []byte, off int) []uint16 {
	end := off + 2 + int(binary.BigEndian.Uint16(msg[off:]))
	var ids []uint16
	for p := off + 2; p < end; {
		id := binary.BigEndian.Uint16(msg[p:])
		l := int(binary.BigEndian.Uint16(msg[p+2:]))
		ids = append(ids, id)
		p += 4 + l
	}
	return ids
}

func supportedVersions(ch []byte) []uint16 {
	off := chExtOffset(ch)
	end := off + 2 + int(binary.BigEndian.Uint16(ch[off:]))
	for p := off + 2; p < end; {
		id := binary.BigEndian.Uint16(ch[p:])
		l := int(binary.BigEndian.Uint16(ch[p+2:]))
		if id == 43 {
			var v []uint16
			d := ch[p+4+1 : p+4+l]
			for i := 0; i+1 < len(d); i += 2 {
				v = append(v, binary.BigEndian.Uint16(d[i:]))
			}
			return v
		}
		p += 4 + l
	}
	return nil
}

// addExt appends an empty extension with the given id to a ClientHello.
func addExt(ch []byte, id uint16) []byte {
	off := chExtOffset(ch)
	out := append([]byte{}, ch...)
	out = append(out, byte(id>>8), byte(id), 0, 0)
	binary.BigEndian.PutUint16(out[off:], binary.BigEndian.Uint16(out[off:])+4)
	n := len(out) - 4
	out[1], out[2], out[3] = byte(n>>16), byte(n>>8), byte(n)
	return out
}

// stripEEExt removes extension id from an EncryptedExtensions message found in
// a run of handshake messages.
func stripEEExt(msgs []byte, id uint16) []byte {
	var out []byte
	for p := 0; p+4 <= len(msgs); {
		n := int(msgs[p+1])<<16 | int(msgs[p+2])<<8 | int(msgs[p+3])
		m := msgs[p : p+4+n]
		p += 4 + n
		if m[0] != 8 { // encrypted_extensions
			out = append(out, m...)
			continue
		}
		var exts []byte
		end := 4 + 2 + int(binary.BigEndian.Uint16(m[4:]))
		for q := 6; q < end; {
			eid := binary.BigEndian.Uint16(m[q:])
			l := int(binary.BigEndian.Uint16(m[q+2:]))
			if eid != id {
				exts = append(exts, m[q:q+4+l]...)
			}
			q += 4 + l
		}
		body := append([]byte{byte(len(exts) >> 8), byte(len(exts))}, exts...)
		out = append(out, 8, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		out = append(out, body...)
	}
	return out
}

var levelNames = map[tls.QUICEncryptionLevel]string{}

func quicServer() *tls.QUICConn {
	cert := selfSigned()
	q := tls.QUICServer(&tls.QUICConfig{TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}})
	q.SetTransportParameters(nil)
	if err := q.Start(context.Background()); err != nil {
		panic(err)
	}
	return q
}

func eventKind(k tls.QUICEventKind) string {
	switch k {
	case tls.QUICSetReadSecret:
		return "SetReadSecret"
	case tls.QUICSetWriteSecret:
		return "SetWriteSecret"
	case tls.QUICWriteData:
		return "WriteData"
	case tls.QUICTransportParameters:
		return "TransportParameters"
	case tls.QUICTransportParametersRequired:
		return "TransportParametersRequired"
	case tls.QUICHandshakeDone:
		return "HandshakeDone"
	case tls.QUICErrorEvent:
		return "ErrorEvent"
	}
	return fmt.Sprint(int(k))
}

func quicProbe() {
	fmt.Println("== QUICServer fed a TCP ClientHello")
	probes := []struct {
		name string
		cfg  *tls.Config
		ext  bool
	}{
		{"crypto/tls client, default config (offers 1.3+1.2)", &tls.Config{InsecureSkipVerify: true, ServerName: "example.test"}, false},
		{"crypto/tls client, MinVersion=TLS1.3", &tls.Config{InsecureSkipVerify: true, ServerName: "example.test", MinVersion: tls.VersionTLS13}, false},
		{"crypto/tls client, MinVersion=TLS1.3, + injected empty ext 57", &tls.Config{InsecureSkipVerify: true, ServerName: "example.test", MinVersion: tls.VersionTLS13}, true},
	}
	for _, p := range probes {
		_, cc, ch, _ := startClient(p.cfg)
		if p.ext {
			ch = addExt(ch, 57)
		}
		fmt.Printf("-- %s\n   ClientHello %d B, supported_versions=%x, extensions=%v\n", p.name, len(ch), supportedVersions(ch), listExts(ch, chExtOffset(ch)))
		q := quicServer()
		err := q.HandleData(tls.QUICEncryptionLevelInitial, ch)
		fmt.Printf("   HandleData(Initial) error: %v\n", err)
		var ae tls.AlertError
		if errors.As(err, &ae) {
			fmt.Printf("   alert: %v\n", ae)
		}
		var evs []string
		for {
			e := q.NextEvent()
			if e.Kind == tls.QUICNoEvent {
				break
			}
			evs = append(evs, fmt.Sprintf("%s(%v,%dB)", eventKind(e.Kind), e.Level, len(e.Data)))
		}
		fmt.Printf("   events: %v\n", evs)
		q.Close()
		cc.Close()
	}

	// Full attempt: frame the QUICServer output as TLS records and send it to
	// the real crypto/tls client whose (modified) ClientHello was used.
	for _, strip := range []bool{false, true} {
		fmt.Printf("== framed QUICServer flight -> crypto/tls client (strip ext 57 from EncryptedExtensions: %v)\n", strip)
		ckl := &rawLog{}
		sc, _, ch, errc := startClient(&tls.Config{InsecureSkipVerify: true, ServerName: "example.test", MinVersion: tls.VersionTLS13, KeyLogWriter: ckl})
		q := quicServer()
		if err := q.HandleData(tls.QUICEncryptionLevelInitial, addExt(ch, 57)); err != nil {
			fmt.Println("   HandleData:", err)
			continue
		}
		var wrHS, rdHS *half
		var out []byte
		for {
			e := q.NextEvent()
			if e.Kind == tls.QUICNoEvent {
				break
			}
			switch e.Kind {
			case tls.QUICSetWriteSecret:
				if e.Level == tls.QUICEncryptionLevelHandshake {
					wrHS = newHalf(e.Suite, append([]byte{}, e.Data...))
					fmt.Printf("   QUICServer s_hs_traffic secret : %x\n", e.Data)
				}
			case tls.QUICSetReadSecret:
				if e.Level == tls.QUICEncryptionLevelHandshake {
					rdHS = newHalf(e.Suite, append([]byte{}, e.Data...))
				}
			case tls.QUICWriteData:
				d := append([]byte{}, e.Data...)
				switch e.Level {
				case tls.QUICEncryptionLevelInitial: // plaintext handshake record
					out = append(out, 22, 3, 3, byte(len(d)>>8), byte(len(d)))
					out = append(out, d...)
				case tls.QUICEncryptionLevelHandshake:
					if strip {
						d = stripEEExt(d, 57)
					}
					for len(d) > 0 {
						m := min(len(d), 16384)
						out = wrHS.seal(out, 22, d[:m])
						d = d[m:]
					}
				default:
					fmt.Println("   unexpected data at level", e.Level)
				}
			}
		}
		sc.Write(out) // to the client
		err := <-errc
		fmt.Printf("   client s_hs_traffic secret (KeyLogWriter): %s\n", ckl.get("SERVER_HANDSHAKE_TRAFFIC_SECRET"))
		fmt.Printf("   client Handshake error: %v\n", err)
		// what did the client send back? (CCS, then an alert under the handshake key)
		time.Sleep(10 * time.Millisecond)
		recs, _ := splitRecords(sc.take())
		for _, r := range recs {
			switch r[0] {
			case 20:
				fmt.Println("   client record: change_cipher_spec (compat)")
			case 21:
				fmt.Printf("   client record: plaintext alert %v\n", r[5:])
			case 23:
				if rdHS == nil {
					fmt.Println("   client record: encrypted, no key")
					continue
				}
				typ, data, err := rdHS.open(r)
				fmt.Printf("   client record: encrypted type=%d data=%v err=%v\n", typ, data, err)
			}
		}
		q.Close()
	}
}

type rawLog struct{ lines []string }

func (r *rawLog) Write(p []byte) (int, error) {
	r.lines = append(r.lines, string(p))
	return len(p), nil
}
func (r *rawLog) get(label string) string {
	for _, l := range r.lines {
		var a, b, c string
		fmt.Sscan(l, &a, &b, &c)
		if a == label {
			return c
		}
	}
	return ""
}

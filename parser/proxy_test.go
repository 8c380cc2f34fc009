package parser_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/upgate/upgate/parser"
)

// proxyV2 builds a v2 header: command, family, address block, then tlv.
func proxyV2(cmd, fam byte, addr []byte, tlv []byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr)+len(tlv)))
	b = append(b, addr...)
	return append(b, tlv...)
}

func v4block(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func v6block(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func TestParseProxy(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name  string
		in    []byte
		n     int // bytes of the header (the input may go on)
		err   error
		local bool
		ver   int
		src   netip.AddrPort
		dst   netip.AddrPort
	}{
		{name: "v1 tcp4", in: []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /"), n: 45, ver: 1,
			src: ap("192.0.2.1:56324"), dst: ap("198.51.100.2:443")},
		{name: "v1 tcp6", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"), n: 44, ver: 1,
			src: ap("[2001:db8::1]:1"), dst: ap("[2001:db8::2]:65535")},
		{name: "v1 unknown", in: []byte("PROXY UNKNOWN\r\n"), n: 15, ver: 1, local: true},
		{name: "v1 unknown with addresses", in: []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), n: 35, ver: 1, local: true},
		{name: "v1 port 0", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"), n: 32, ver: 1,
			src: ap("1.2.3.4:0"), dst: ap("5.6.7.8:0")},
		{name: "v1 incomplete", in: []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r"), err: parser.ErrNeedMore},
		{name: "v1 prefix only", in: []byte("PRO"), err: parser.ErrNeedMore},
		{name: "empty", in: nil, err: parser.ErrNeedMore},
		{name: "v1 too long", in: append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 200)...), err: parser.ErrBadProxy},
		{name: "v1 leading zero in address", in: []byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 octet over 255", in: []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 port over 65535", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 leading zero in port", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 two spaces", in: []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 extra field", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), err: parser.ErrBadProxy},
		{name: "v1 missing port", in: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), err: parser.ErrBadProxy},
		{name: "v1 tcp6 with v4 address", in: []byte("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 tcp4 with v6 address", in: []byte("PROXY TCP4 ::1 ::2 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 udp", in: []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), err: parser.ErrBadProxy},
		{name: "v1 lower case", in: []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), err: parser.ErrNotProxy},
		{name: "plain HTTP", in: []byte("GET / HTTP/1.1\r\n"), err: parser.ErrNotProxy},
		{name: "v2 tcp4", in: proxyV2(1, 0x11, v4block("10.0.0.1", "10.0.0.2", 1234, 80), nil), n: 28, ver: 2,
			src: ap("10.0.0.1:1234"), dst: ap("10.0.0.2:80")},
		{name: "v2 tcp6 with TLVs", in: proxyV2(1, 0x21, v6block("2001:db8::1", "2001:db8::2", 1, 2), []byte{0x04, 0, 3, 'a', 'b', 'c'}), n: 58, ver: 2,
			src: ap("[2001:db8::1]:1"), dst: ap("[2001:db8::2]:2")},
		{name: "v2 local", in: proxyV2(0, 0x00, nil, nil), n: 16, ver: 2, local: true},
		{name: "v2 local with addresses", in: proxyV2(0, 0x11, v4block("10.0.0.1", "10.0.0.2", 1, 2), nil), n: 28, ver: 2, local: true},
		{name: "v2 unix", in: proxyV2(1, 0x31, make([]byte, 216), nil), n: 232, ver: 2, local: true},
		{name: "v2 unspec", in: proxyV2(1, 0x00, nil, nil), n: 16, ver: 2, local: true},
		{name: "v2 udp", in: proxyV2(1, 0x12, v4block("10.0.0.1", "10.0.0.2", 1, 2), nil), err: parser.ErrBadProxy},
		{name: "v2 short address block", in: proxyV2(1, 0x11, make([]byte, 11), nil), err: parser.ErrBadProxy},
		{name: "v2 bad command", in: proxyV2(2, 0x11, v4block("10.0.0.1", "10.0.0.2", 1, 2), nil), err: parser.ErrBadProxy},
		{name: "v2 bad version", in: append(append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x11, 0x11, 0, 12), make([]byte, 12)...), err: parser.ErrBadProxy},
		{name: "v2 too long", in: append(append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11), 0xff, 0xff), err: parser.ErrBadProxy},
		{name: "v2 incomplete header", in: []byte("\r\n\r\n\x00\r\nQUIT\n\x21"), err: parser.ErrNeedMore},
		{name: "v2 incomplete addresses", in: proxyV2(1, 0x11, v4block("10.0.0.1", "10.0.0.2", 1, 2), nil)[:20], err: parser.ErrNeedMore},
		{name: "v2 signature prefix", in: []byte("\r\n\r\n\x00"), err: parser.ErrNeedMore},
		{name: "blank line is not a signature", in: []byte("\r\n\r\nGET"), err: parser.ErrNotProxy},
	}
	for i, tt := range tests {
		var h parser.ProxyHeader
		n, err := parser.ParseProxy(tt.in, &h)
		if err != tt.err {
			t.Errorf("#%d %s: got error %v; want %v", i, tt.name, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		want := parser.ProxyHeader{Version: tt.ver, Local: tt.local, Src: tt.src, Dst: tt.dst}
		if n != tt.n || h != want {
			t.Errorf("#%d %s: got %d, %+v; want %d, %+v", i, tt.name, n, h, tt.n, want)
		}
		// Every proper prefix of a header needs more.
		for k := 0; k < tt.n; k++ {
			if _, err := parser.ParseProxy(tt.in[:k], &h); err != parser.ErrNeedMore {
				t.Errorf("#%d %s: prefix of %d bytes: got %v; want ErrNeedMore", i, tt.name, k, err)
				break
			}
		}
	}
}

// FuzzProxy: never panics, never reads past its input, consumes no more than
// it was given and at most the protocol's maximum, and needs more only for
// a proper prefix of something that could be a header.
func FuzzProxy(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, 0x11, v4block("10.0.0.1", "10.0.0.2", 1234, 80), nil))
	f.Add(proxyV2(1, 0x21, v6block("::1", "::2", 1, 2), []byte{1, 0, 1, 'x'}))
	f.Fuzz(func(t *testing.T, in []byte) {
		// No header is longer than ProxyV2MaxLen: one byte more is enough
		// to check that the parser stops needing more there.
		if len(in) > parser.ProxyV2MaxLen+1 {
			return
		}
		in = in[:len(in):len(in)]
		var h parser.ProxyHeader
		n, err := parser.ParseProxy(in, &h)
		switch err {
		case nil:
			if n <= 0 || n > len(in) || n > parser.ProxyV2MaxLen {
				t.Fatalf("consumed %d of %d", n, len(in))
			}
			if h.Version != 1 && h.Version != 2 {
				t.Fatalf("version %d", h.Version)
			}
			if !h.Local && (!h.Src.IsValid() || !h.Dst.IsValid()) {
				t.Fatalf("invalid addresses %+v", h)
			}
		case parser.ErrNeedMore:
			if len(in) >= parser.ProxyV2MaxLen {
				t.Fatalf("needs more after %d bytes", len(in))
			}
		case parser.ErrNotProxy, parser.ErrBadProxy:
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

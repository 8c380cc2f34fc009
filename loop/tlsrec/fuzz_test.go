package tlsrec

import (
	"crypto/tls"
	"testing"
)

// FuzzDecrypt feeds arbitrary bytes, and arbitrary contents sealed under
// the right key, to Decrypt, of a server and of a client: it never panics,
// never consumes more than it was given, and returns no more plaintext
// than ciphertext.
func FuzzDecrypt(f *testing.F) {
	_, cli := pair(f, tls.TLS_AES_128_GCM_SHA256)
	w, _ := cli.Encrypt(nil, []byte("hello"))
	f.Add(w, byte(TypeApplicationData), []byte("x"))
	f.Add([]byte{23, 3, 3, 0, 17}, byte(TypeHandshake), []byte{24, 0, 0, 1, 1})
	f.Add([]byte{}, byte(TypeAlert), []byte{1, 0})
	f.Add([]byte{}, byte(TypeHandshake), []byte{24, 0})
	f.Add([]byte{}, byte(TypeHandshake), ticket(13))
	f.Fuzz(func(t *testing.T, raw []byte, typ byte, content []byte) {
		for _, client := range []bool{false, true} {
			srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
			srv.Client = client
			for _, src := range [][]byte{raw, sealed(cli, typ, content, raw)} {
				n, out, err := srv.Decrypt(nil, src)
				if n < 0 || n > len(src) {
					t.Fatalf("client %v: consumed %d of %d bytes", client, n, len(src))
				}
				if len(out) > len(src) {
					t.Fatalf("client %v: %d bytes of plaintext from %d of ciphertext", client, len(out), len(src))
				}
				if err != nil {
					break
				}
			}
		}
	})
}

// sealed returns content sealed as a record of type typ, then raw.
func sealed(c *Conn, typ byte, content, raw []byte) []byte {
	if len(content) > MaxPlaintext {
		content = content[:MaxPlaintext]
	}
	w, _ := c.Out.Seal(nil, ContentType(typ), content)
	return append(w, raw...)
}

package parser

import (
	"crypto/sha1"
	"encoding/base64"
)

// AcceptLen is the length of a Sec-WebSocket-Accept value.
const AcceptLen = 28

// keyLen is the length of a valid Sec-WebSocket-Key: base64 of 16 bytes.
const keyLen = 24

// websocketGUID is appended to the key before hashing (RFC 6455 §1.3).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ValidKey reports whether key is a valid Sec-WebSocket-Key: the base64
// encoding of exactly 16 bytes (RFC 6455 §4.2.1, item 5), with zero padding
// bits as RFC 4648 §3.5 requires of an encoder.
func ValidKey(key []byte) bool {
	if len(key) != keyLen || key[22] != '=' || key[23] != '=' {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Strict().Decode(raw[:], key)
	return err == nil && n == 16
}

// AcceptKey computes Sec-WebSocket-Accept for key into dst: the base64 of
// the SHA-1 of the key followed by the WebSocket GUID (RFC 6455 §4.2.2).
// It allocates nothing.
func AcceptKey(dst *[AcceptLen]byte, key []byte) {
	var sum [sha1.Size]byte
	if len(key) == keyLen {
		var in [keyLen + len(websocketGUID)]byte
		copy(in[copy(in[:], key):], websocketGUID)
		sum = sha1.Sum(in[:])
	} else {
		// Keys of another length are rejected by ValidKey; hashing them
		// anyway keeps the function total.
		h := sha1.New()
		h.Write(key)
		h.Write([]byte(websocketGUID))
		h.Sum(sum[:0])
	}
	base64.StdEncoding.Encode(dst[:], sum[:])
}

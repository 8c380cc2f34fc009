package frame

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// maxCloseReason is the longest close reason: a control frame payload is at
// most 125 bytes (§5.5) and the code takes 2 of them (§5.5.1).
const maxCloseReason = ws.MaxControlFramePayloadSize - 2

// ValidCloseCode reports whether code may appear in a close frame on the
// wire (§7.4.1, §7.4.2 and the IANA "WebSocket Close Code Number Registry"):
// 1000-1003, 1007-1014 and 3000-4999.
//
// Invalid are 0-999 (not used), 1004 (reserved), 1005, 1006 and 1015 (only
// for reporting, never sent), 1016-2999 (reserved for the protocol, not yet
// assigned) and 5000 and above (out of range).
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClose decodes the payload of a close frame (§5.5.1), already
// unmasked. An empty payload carries no status: code is 1005
// (ws.StatusNoStatusRcvd, §7.1.5) and the usual reply is a close with 1000.
// A 1-byte payload is ErrCloseLength, a code that ValidCloseCode rejects is
// ErrCloseCode and a reason that is not valid UTF-8 is ErrCloseReasonUTF8.
// reason aliases payload.
func ParseClose(payload []byte) (code ws.StatusCode, reason []byte, err error) {
	switch len(payload) {
	case 0:
		return ws.StatusNoStatusRcvd, nil, nil
	case 1:
		return 0, nil, ErrCloseLength
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(payload))
	if !ValidCloseCode(code) {
		return 0, nil, ErrCloseCode
	}
	reason = payload[2:]
	var v UTF8Validator
	if !v.Write(reason) || !v.Complete() {
		return 0, nil, ErrCloseReasonUTF8
	}
	return code, reason, nil
}

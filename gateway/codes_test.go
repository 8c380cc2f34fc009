package gateway

import (
	"testing"

	"github.com/gobwas/ws"
)

func TestOpCodeString(t *testing.T) {
	for i, c := range []struct {
		op   OpCode
		want string
	}{
		{OpText, "text"}, {OpBinary, "binary"}, {OpPing, "ping"}, {OpPong, "pong"},
		{0, "OpCode(0)"}, {8, "OpCode(8)"}, {255, "OpCode(255)"},
	} {
		if got := c.op.String(); got != c.want {
			t.Errorf("#%d: got %q; want %q", i, got, c.want)
		}
	}
}

func TestStatusCodeString(t *testing.T) {
	for i, c := range []struct {
		code StatusCode
		want string
	}{
		{StatusNormalClosure, "1000 normal closure"},
		{StatusNoStatusRcvd, "1005 no status received"},
		{StatusTryAgainLater, "1013 try again later"},
		{StatusTLSHandshake, "1015 TLS handshake"},
		{1004, "1004"}, {1016, "1016"}, {999, "999"}, {4002, "4002"}, {0, "0"},
	} {
		if got := c.code.String(); got != c.want {
			t.Errorf("#%d: got %q; want %q", i, got, c.want)
		}
	}
}

// TestCodesMatchTheCodec checks that the gateway's codes are the wire
// values the loop's codec uses: a cast converts them.
func TestCodesMatchTheCodec(t *testing.T) {
	ops := []struct {
		op OpCode
		ws ws.OpCode
	}{{OpText, ws.OpText}, {OpBinary, ws.OpBinary}, {OpPing, ws.OpPing}, {OpPong, ws.OpPong}}
	for i, c := range ops {
		if uint8(c.op) != uint8(c.ws) {
			t.Errorf("#%d: got %d; want %d", i, c.op, c.ws)
		}
	}
	codes := []struct {
		code StatusCode
		ws   ws.StatusCode
	}{
		{StatusNormalClosure, ws.StatusNormalClosure}, {StatusGoingAway, ws.StatusGoingAway},
		{StatusProtocolError, ws.StatusProtocolError}, {StatusUnsupportedData, ws.StatusUnsupportedData},
		{StatusNoStatusRcvd, ws.StatusNoStatusRcvd}, {StatusAbnormalClosure, ws.StatusAbnormalClosure},
		{StatusInvalidFramePayloadData, ws.StatusInvalidFramePayloadData},
		{StatusPolicyViolation, ws.StatusPolicyViolation}, {StatusMessageTooBig, ws.StatusMessageTooBig},
		{StatusMandatoryExtension, ws.StatusMandatoryExt}, {StatusInternalServerError, ws.StatusInternalServerError},
		{StatusTLSHandshake, ws.StatusTLSHandshake},
	}
	for i, c := range codes {
		if uint16(c.code) != uint16(c.ws) {
			t.Errorf("#%d: got %d; want %d", i, c.code, c.ws)
		}
	}
}

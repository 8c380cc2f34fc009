package parser_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/upgate/upgate/parser"
)

// TestErrorsSpeakPlainly checks that every rejection keeps its package
// prefix for Go and logs, and carries a plain sentence for the client.
func TestErrorsSpeakPlainly(t *testing.T) {
	all := []*parser.Error{
		parser.ErrBadRequestLine, parser.ErrBadMethod, parser.ErrBadTarget, parser.ErrBadVersion,
		parser.ErrVersion, parser.ErrHTTP2Preface, parser.ErrBareLF, parser.ErrBareCR,
		parser.ErrBadFieldName, parser.ErrSpaceBeforeColon, parser.ErrObsFold, parser.ErrBadFieldValue,
		parser.ErrMissingHost, parser.ErrDuplicateHost, parser.ErrBadHost, parser.ErrBadContentLength,
		parser.ErrLengthAndChunked, parser.ErrBadTE, parser.ErrUnsupportedTE, parser.ErrURITooLong,
		parser.ErrHeadTooLarge, parser.ErrTooManyFields, parser.ErrWebSocketMethod, parser.ErrWebSocketKey,
		parser.ErrMissingWSVersion, parser.ErrWebSocketVersion, parser.ErrWebSocketBody,
		parser.ErrBadExtensions, parser.ErrBadSubprotocols, parser.ErrWebSocketHTTP10,
		parser.ErrNotProxy, parser.ErrBadProxy,
	}
	for i, e := range all {
		if !strings.HasPrefix(e.Error(), "parser: ") {
			t.Errorf("#%d: got Error() %q; want the prefix \"parser: \"", i, e.Error())
		}
		if !plainSentence(e.Body) {
			t.Errorf("#%d: %s: got body %q; want a plain sentence", i, e.Reason, e.Body)
		}
		resp := string(parser.AppendError(nil, e))
		if body := resp[strings.Index(resp, "\r\n\r\n")+4:]; body != e.Body+"\n" {
			t.Errorf("#%d: %s: got response body %q; want %q", i, e.Reason, body, e.Body+"\n")
		}
	}
}

// plainSentence reports whether s reads as a sentence: a capital first,
// a full stop last, and no Go package prefix.
func plainSentence(s string) bool {
	if s == "" || !unicode.IsUpper(rune(s[0])) || !strings.HasSuffix(s, ".") {
		return false
	}
	pkg, _, ok := strings.Cut(s, ": ")
	return !ok || strings.ContainsAny(pkg, " .-")
}

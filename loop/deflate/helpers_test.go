package deflate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// corpus returns 16 different JSON messages of about 2 KiB, the same on
// every run: events with ids, names, timestamps and nested arrays, as a
// gateway relays them.
func corpus() [][]byte {
	rng := rand.New(rand.NewPCG(7692, 6455))
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	kinds := []string{"order.created", "order.filled", "quote.update", "chat.message", "presence"}
	type item struct {
		SKU   string  `json:"sku"`
		Qty   int     `json:"qty"`
		Price float64 `json:"price"`
		Tags  []string
	}
	type event struct {
		ID        string  `json:"id"`
		Seq       int     `json:"seq"`
		Kind      string  `json:"kind"`
		User      string  `json:"user"`
		Timestamp string  `json:"ts"`
		Items     []item  `json:"items"`
		Scores    []int   `json:"scores"`
		Ratio     float64 `json:"ratio"`
		Note      string  `json:"note"`
	}
	out := make([][]byte, 16)
	for i := range out {
		e := event{
			ID:        fmt.Sprintf("%08x-%04x-%04x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff),
			Seq:       1000 + i,
			Kind:      kinds[rng.IntN(len(kinds))],
			User:      names[rng.IntN(len(names))],
			Timestamp: fmt.Sprintf("2025-03-%02dT%02d:%02d:%02d.%03dZ", 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000)),
			Ratio:     rng.Float64(),
			Note:      strings.Repeat(names[rng.IntN(len(names))]+" ", 1+rng.IntN(6)),
		}
		for len(e.Scores) < 20 {
			e.Scores = append(e.Scores, rng.IntN(100000))
		}
		for {
			b, _ := json.Marshal(e)
			if len(b) >= 1900 {
				out[i] = b
				break
			}
			e.Items = append(e.Items, item{
				SKU:   fmt.Sprintf("SKU-%05d", rng.IntN(100000)),
				Qty:   1 + rng.IntN(50),
				Price: float64(rng.IntN(100000)) / 100,
				Tags:  []string{kinds[rng.IntN(len(kinds))], names[rng.IntN(len(names))]},
			})
		}
	}
	return out
}

// sample returns n bytes of text with repetitions near and far, the same on
// every run, so that a compressor finds matches at every distance.
func sample(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	words := []string{"upgate", "frame", "deflate", "window", "message", "loop", "the", "a", "{\"id\":", "]}", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		if rng.IntN(8) == 0 {
			b.WriteByte(byte(rng.Uint32())) // a little noise
			continue
		}
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// mustCompressor returns a Compressor or fails t.
func mustCompressor(t testing.TB, level, bits int) *Compressor {
	t.Helper()
	c, err := NewCompressor(level, bits)
	if err != nil {
		t.Fatalf("NewCompressor(%d, %d): %v", level, bits, err)
	}
	return c
}

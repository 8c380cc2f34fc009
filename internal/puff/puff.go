// Package puff is a small DEFLATE decoder (RFC 1951) for tests, in the
// manner of zlib's contrib/puff: slow and plain, it records the longest
// back reference distance, which no library reports, so that tests can
// prove a compressor stays within its window.
package puff

import "errors"

// errInflate is returned for data that is not DEFLATE.
var errInflate = errors.New("puff: bad data")

type puff struct {
	in      []byte
	pos     int // next byte
	bit     uint32
	nbit    uint
	out     []byte
	maxDist int
}

func (p *puff) bits(n uint) (int, error) {
	v := p.bit
	for p.nbit < n {
		if p.pos == len(p.in) {
			return 0, errInflate
		}
		v |= uint32(p.in[p.pos]) << p.nbit
		p.pos++
		p.nbit += 8
	}
	p.bit = v >> n
	p.nbit -= n
	return int(v & (1<<n - 1)), nil
}

// huffman is a canonical code: count[len] codes of each length, symbols in
// code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) (*huffman, error) {
	h := &huffman{symbol: make([]int, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	if h.count[0] == len(lengths) {
		return h, nil
	}
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= h.count[l]
		if left < 0 {
			return nil, errInflate // over-subscribed
		}
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = s
			offs[l]++
		}
	}
	return h, nil
}

func (p *puff) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := p.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)], nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, errInflate
}

var (
	lenBase  = []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = []uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = []uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func (p *puff) codes(lit, dist *huffman) error {
	for {
		sym, err := p.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			p.out = append(p.out, byte(sym))
		case sym == 256:
			return nil
		default:
			sym -= 257
			if sym >= len(lenBase) {
				return errInflate
			}
			e, err := p.bits(lenExtra[sym])
			if err != nil {
				return err
			}
			n := lenBase[sym] + e
			ds, err := p.decode(dist)
			if err != nil {
				return err
			}
			if ds >= len(distBase) {
				return errInflate
			}
			e, err = p.bits(distExtr[ds])
			if err != nil {
				return err
			}
			d := distBase[ds] + e
			if d > len(p.out) {
				return errInflate
			}
			p.maxDist = max(p.maxDist, d)
			for range n {
				p.out = append(p.out, p.out[len(p.out)-d])
			}
		}
	}
}

func (p *puff) fixed() error {
	lengths := make([]int, 288+30)
	for i := range 288 {
		switch {
		case i < 144:
			lengths[i] = 8
		case i < 256:
			lengths[i] = 9
		case i < 280:
			lengths[i] = 7
		default:
			lengths[i] = 8
		}
	}
	for i := range 30 {
		lengths[288+i] = 5
	}
	lit, _ := newHuffman(lengths[:288])
	dist, _ := newHuffman(lengths[288:])
	return p.codes(lit, dist)
}

func (p *puff) dynamic() error {
	nlen, err := p.bits(5)
	if err != nil {
		return err
	}
	ndist, err := p.bits(5)
	if err != nil {
		return err
	}
	ncode, err := p.bits(4)
	if err != nil {
		return err
	}
	nlen, ndist, ncode = nlen+257, ndist+1, ncode+4
	order := []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var cl [19]int
	for i := range ncode {
		if cl[order[i]], err = p.bits(3); err != nil {
			return err
		}
	}
	lencode, err := newHuffman(cl[:])
	if err != nil {
		return err
	}
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist {
		sym, err := p.decode(lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths = append(lengths, sym)
			continue
		}
		prev, rep := 0, 0
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return errInflate
			}
			prev = lengths[len(lengths)-1]
			rep, err = p.bits(2)
			rep += 3
		case 17:
			rep, err = p.bits(3)
			rep += 3
		default:
			rep, err = p.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if len(lengths)+rep > nlen+ndist {
			return errInflate
		}
		for range rep {
			lengths = append(lengths, prev)
		}
	}
	lit, err := newHuffman(lengths[:nlen])
	if err != nil {
		return err
	}
	dist, err := newHuffman(lengths[nlen:])
	if err != nil {
		return err
	}
	return p.codes(lit, dist)
}

func (p *puff) stored() error {
	p.bit, p.nbit = 0, 0
	if p.pos+4 > len(p.in) {
		return errInflate
	}
	n := int(p.in[p.pos]) | int(p.in[p.pos+1])<<8
	nn := int(p.in[p.pos+2]) | int(p.in[p.pos+3])<<8
	p.pos += 4
	if n != ^nn&0xffff || p.pos+n > len(p.in) {
		return errInflate
	}
	p.out = append(p.out, p.in[p.pos:p.pos+n]...)
	p.pos += n
	return nil
}

// Inflate inflates data up to its final block, or to its end when it ends
// on a block boundary, and returns the output and the longest distance of
// a back reference.
func Inflate(data []byte) (out []byte, maxDist int, err error) {
	p := &puff{in: data}
	for p.pos < len(p.in) {
		last, err := p.bits(1)
		if err != nil {
			return nil, 0, err
		}
		typ, err := p.bits(2)
		if err != nil {
			return nil, 0, err
		}
		switch typ {
		case 0:
			err = p.stored()
		case 1:
			err = p.fixed()
		case 2:
			err = p.dynamic()
		default:
			err = errInflate
		}
		if err != nil {
			return nil, 0, err
		}
		if last == 1 {
			break
		}
	}
	return p.out, p.maxDist, nil
}

package normalize

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"unicode/utf8"
)

// This file reads a vendor's JSON body in place. scan validates the body once, accepting
// exactly what json.Valid accepts, and in the same pass records the top-level object's
// members as offsets into the body and, when asked (pick), one member of every item of a
// top-level array: the qualification of Enrow's bulk results, the status of eCore's
// validation records. Everything else reads the validated body without checking it again
// and without copying it: a value is a sub-slice of the body, and a nested object or array
// is walked by a cursor when it is read. Only the strings that are kept are copied out.

// maxDepth is encoding/json's nesting limit: json.Valid rejects deeper values.
const maxDepth = 10000

// member is one member of an object: its key (with the quotes) and its value, as offsets
// into the object's text.
type member struct{ k0, k1, v0, v1 uint32 }

// pick asks scan for the member key of every item of the top-level array member list, and
// holds what scan found, for the last member named list whose value is an array (the one
// an object lookup finds).
type pick struct {
	list, key string

	span     []byte // that array; nil when there is none
	n        int    // its items
	vals     [8]picked
	nvals    int
	overflow bool // more distinct values than vals holds: walk the array instead
}

// picked is one distinct value of the picked member, as written, and how many items have it.
type picked struct {
	raw []byte
	n   int
}

func (p *pick) reset() { p.span, p.n, p.nvals, p.overflow = nil, 0, 0, false }

// add counts an item whose picked member is raw.
func (p *pick) add(raw []byte) {
	for j := range p.nvals {
		if bytes.Equal(p.vals[j].raw, raw) {
			p.vals[j].n++
			return
		}
	}
	if p.nvals == len(p.vals) {
		p.overflow = true
		return
	}
	p.vals[p.nvals] = picked{raw, 1}
	p.nvals++
}

// of returns the distinct values picked from list and the number of its items, when list
// is the array they were picked from; ok is false otherwise, and list must be walked.
func (p *pick) of(list []byte) (vals []picked, n int, ok bool) {
	if p == nil || p.overflow || len(p.span) == 0 || len(list) != len(p.span) || &list[0] != &p.span[0] {
		return nil, 0, false
	}
	return p.vals[:p.nvals], p.n, true
}

// scan reports whether data is one valid JSON value, exactly as json.Valid does. When it
// is, val is the value without the whitespace around it and, when the value is an object,
// members lists the object's members in order (nil when data is too large for the offsets;
// the object is then read by walking it), and p, when not nil, is filled in.
func scan(data []byte, p *pick) (val []byte, members []member, ok bool) {
	var stackBuf [64]byte
	stack := stackBuf[:0] // '{' or '[' for every open container
	var membersBuf [16]member
	found := membersBuf[:0] // the top-level members, copied out to members at the end
	index := uint64(len(data)) <= math.MaxUint32
	if p != nil {
		p.reset()
	}
	start := skipWS(data, 0)
	i := start
	var (
		k0, k1, v0 int  // the top-level member being read
		isList     bool // its key is p.list
		inList     bool // it is an array named p.list: depths 2 and 3 are its items
		listStart  int
		isKey      bool   // the item member being read is p.key
		kv0        int    // where its value starts
		itemVal    []byte // the current item's p.key, the last one
	)
	for {
		// i is where a value must start, after its key in an object.
		if depth := len(stack); depth > 0 && stack[depth-1] == '{' {
			var a, b int
			if a, b, i, ok = scanKey(data, i); !ok {
				return nil, nil, false
			}
			switch {
			case depth == 1:
				k0, k1 = a, b
				isList = p != nil && keyIs(data[a:b], p.list)
			case depth == 3 && inList:
				isKey = keyIs(data[a:b], p.key)
			}
		}
		if i >= len(data) {
			return nil, nil, false
		}
		switch len(stack) {
		case 1:
			v0 = i
		case 2:
			itemVal, isKey = nil, false
		case 3:
			kv0 = i
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if len(stack) == maxDepth {
				return nil, nil, false
			}
			if len(stack) == 1 {
				if inList = isList && c == '['; inList {
					p.reset()
					listStart = i
				}
			}
			stack = append(stack, c)
			i = skipWS(data, i+1)
			if i < len(data) && data[i] == c+2 { // '}' is '{'+2 and ']' is '['+2
				stack = stack[:len(stack)-1]
				i++
				break // an empty container is a complete value
			}
			continue // the first member or item
		case c == '"':
			if i, ok = scanString(data, i); !ok {
				return nil, nil, false
			}
		case c == 't':
			if i, ok = scanLiteral(data, i, "true"); !ok {
				return nil, nil, false
			}
		case c == 'f':
			if i, ok = scanLiteral(data, i, "false"); !ok {
				return nil, nil, false
			}
		case c == 'n':
			if i, ok = scanLiteral(data, i, "null"); !ok {
				return nil, nil, false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i, ok = scanNumber(data, i); !ok {
				return nil, nil, false
			}
		default:
			return nil, nil, false
		}
		// A value ends at i: close what it ends, up to the next value.
		for {
			switch len(stack) {
			case 0:
				if skipWS(data, i) != len(data) {
					return nil, nil, false
				}
				if len(found) > 0 {
					members = make([]member, len(found))
					copy(members, found)
				}
				return data[start:i], members, true
			case 1:
				if stack[0] == '{' && index {
					s := uint32(start)
					found = append(found, member{uint32(k0) - s, uint32(k1) - s, uint32(v0) - s, uint32(i) - s})
				}
				if inList {
					p.span = data[listStart:i]
					inList = false
				}
			case 2:
				if inList {
					p.n++
					if itemVal != nil {
						p.add(itemVal)
					}
				}
			case 3:
				if inList && isKey {
					itemVal = data[kv0:i]
				}
			}
			i = skipWS(data, i)
			if i >= len(data) {
				return nil, nil, false
			}
			top := stack[len(stack)-1]
			if data[i] == ',' {
				i = skipWS(data, i+1)
				break // the next member or item
			}
			if data[i] != top+2 {
				return nil, nil, false
			}
			stack = stack[:len(stack)-1]
			i++ // the container is a complete value
		}
	}
}

// scanKey reads an object key at data[i] and the colon after it: the key is data[k0:k1]
// with its quotes, and the member's value starts at next.
func scanKey(data []byte, i int) (k0, k1, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, 0, 0, false
	}
	k0 = i
	if k1, ok = scanString(data, i); !ok {
		return 0, 0, 0, false
	}
	i = skipWS(data, k1)
	if i >= len(data) || data[i] != ':' {
		return 0, 0, 0, false
	}
	return k0, k1, skipWS(data, i+1), true
}

// plain marks the bytes that may appear as they are inside a JSON string: anything but a
// quote, a backslash and the control characters. Like json.Valid, it takes any other byte,
// also in invalid UTF-8.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

// scanString validates the string that starts with the quote at data[i] and returns the
// offset after its closing quote.
func scanString(data []byte, i int) (int, bool) {
	i++
	for {
		for i+8 <= len(data) {
			if m := special(binary.LittleEndian.Uint64(data[i:]), true); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(data) {
				return 0, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
}

// special looks at 8 bytes of a string at once (the first in the low byte) and returns a
// mask whose lowest set bit is the high bit of the first quote or backslash among them, or
// control character when controls is true; 0 when there is none. (Bits above the lowest
// may be set wrongly: a match borrows from the byte after it.)
func special(x uint64, controls bool) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	m := (q-ones)&^q | (b-ones)&^b
	if controls {
		m |= (x - ones*0x20) &^ x
	}
	return m & highs
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanLiteral checks that data[i:] starts with lit (true, false or null).
func scanLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanNumber validates the number at data[i] (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?
// ([eE][+-]?[0-9]+)?) and returns the offset after it. What follows is checked by the
// caller.
func scanNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// skipWS returns the offset of the first byte at or after i that is not JSON whitespace.
func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// The functions below read JSON that scan has validated; they do not check it again.

// structural marks the bytes a container's walk stops at.
var structural = func() (t [256]bool) {
	for _, c := range []byte(`"{}[]`) {
		t[c] = true
	}
	return t
}()

// skipValue returns the offset after the valid JSON value that starts at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			for i < len(data) && !structural[data[i]] {
				i++
			}
			if i >= len(data) {
				break
			}
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			default: // '}', ']'
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(data)
	}
	// A number or a literal: it ends where whitespace or punctuation starts.
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// quoteOrEscape marks the bytes a walk through a valid string stops at.
var quoteOrEscape = func() (t [256]bool) {
	t['"'], t['\\'] = true, true
	return t
}()

// skipString returns the offset after the valid JSON string that starts with the quote at
// data[i].
func skipString(data []byte, i int) int {
	i++
	for {
		for i+8 <= len(data) {
			if m := special(binary.LittleEndian.Uint64(data[i:]), false); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(data) && !quoteOrEscape[data[i]] {
			i++
		}
		if i >= len(data) {
			return len(data)
		}
		if data[i] == '"' {
			return i + 1
		}
		i += 2 // an escape: the escaped byte cannot end the string
	}
}

// cursor walks the members of a valid JSON object or the items of a valid array, in place.
type cursor struct {
	data []byte // the container's text, from its opening to its closing bracket
	i    int
}

func newCursor(container []byte) cursor { return cursor{data: container, i: 1} }

// member returns the object's next member; ok is false after the last one.
func (c *cursor) member() (key, val []byte, ok bool) {
	i := c.start()
	if i < 0 {
		return nil, nil, false
	}
	k0 := i
	i = skipString(c.data, i)
	key = c.data[k0:i]
	i = skipWS(c.data, skipWS(c.data, i)+1) // the colon
	return key, c.value(i), true
}

// item returns the array's next item; ok is false after the last one.
func (c *cursor) item() (val []byte, ok bool) {
	i := c.start()
	if i < 0 {
		return nil, false
	}
	return c.value(i), true
}

// start skips to the next member or item, or returns -1 at the container's end, leaving
// the cursor after the closing bracket.
func (c *cursor) start() int {
	i := skipWS(c.data, c.i)
	if i >= len(c.data) || c.data[i] == '}' || c.data[i] == ']' {
		c.i = i + 1
		return -1
	}
	if c.data[i] == ',' {
		i = skipWS(c.data, i+1)
	}
	return i
}

// eachField calls fn, for every item of the valid JSON array list, with the value of the
// item's member key: the last one, as encoding/json decodes an object into a map; nil when
// the item has none or is not an object. It returns the number of items. Each item is
// read once, in place.
func eachField(list []byte, key string, fn func(val []byte)) (n int) {
	c := newCursor(list)
	for {
		i := c.start()
		if i < 0 {
			return n
		}
		n++
		if c.data[i] != '{' {
			c.value(i)
			fn(nil)
			continue
		}
		// Walk the item's members with a cursor over the same text: it ends after the
		// item's closing brace, where the array's cursor goes on.
		item := cursor{data: c.data, i: i + 1}
		var val []byte
		for {
			k, v, ok := item.member()
			if !ok {
				break
			}
			if keyIs(k, key) {
				val = v
			}
		}
		c.i = item.i
		fn(val)
	}
}

func (c *cursor) value(i int) []byte {
	end := skipValue(c.data, i)
	c.i = end
	return c.data[i:end]
}

// text decodes a valid JSON string (with its quotes) as encoding/json does: escapes
// resolved, invalid UTF-8 replaced by U+FFFD.
func text(raw []byte) string {
	if s, ok := plainText(raw); ok {
		return string(s)
	}
	var s string
	_ = json.Unmarshal(raw, &s) // valid: cannot fail
	return s
}

// plainText is the content of a valid JSON string when it needs no decoding: no escapes,
// valid UTF-8 (encoding/json then uses the bytes as they are).
func plainText(raw []byte) ([]byte, bool) {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return nil, false
	}
	return s, true
}

// textBytes is text without a copy when the string needs no decoding.
func textBytes(raw []byte) []byte {
	if s, ok := plainText(raw); ok {
		return s
	}
	return []byte(text(raw))
}

// keyIs reports whether a valid JSON string (with its quotes) decodes to key, which must be
// ASCII. An escape always makes the text shorter than what is written, and bytes that are
// not UTF-8 decode to U+FFFD, which is not ASCII: so a string no longer than key is key only
// when it is written as key, and a longer one only when it has an escape.
func keyIs(raw []byte, key string) bool {
	s := raw[1 : len(raw)-1]
	if len(s) <= len(key) {
		return string(s) == key
	}
	return bytes.IndexByte(s, '\\') >= 0 && text(raw) == key
}

// lowerWord appends to dst the text s without the white space around it and in lower
// case, as strings.ToLower(strings.TrimSpace(s)) makes it, without allocating when s is
// ASCII and fits in dst.
func lowerWord(dst, s []byte) []byte {
	s = bytes.TrimSpace(s)
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return bytes.ToLower(s)
		}
	}
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

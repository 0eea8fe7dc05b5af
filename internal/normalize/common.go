package normalize

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxMessageBytes caps error.message: a body that is not JSON goes there truncated to
// 4 KiB (SPEC 3.4), and so does any message taken from a vendor body.
const maxMessageBytes = 4096

// maxFieldDepth bounds how deep a DRF field map is flattened.
const maxFieldDepth = 16

// body is a vendor's JSON body, validated and indexed once by scan.
type body struct {
	kind   byte   // first byte of the value: '{', '[', '"', 't', 'f', 'n', or a number's; 0 when not JSON
	obj    object // the top-level object; not an object (ok() false) when the body is not one
	raw    []byte // the value without the whitespace around it, a sub-slice of the body
	picked *pick  // what scan picked from a top-level array, when it was asked to; else nil
}

// parseBody validates raw as json.Valid does and, when it is valid, reads its top-level
// members and what p asks for, in the same pass. ok is false when raw is not valid JSON.
func parseBody(raw []byte, p *pick) (b body, ok bool) {
	val, members, ok := scan(raw, p)
	if !ok {
		return body{}, false
	}
	b = body{kind: val[0], raw: val, picked: p}
	if b.kind == '{' {
		b.obj = object{raw: val, members: members}
	}
	return b, true
}

// kindOf returns the first byte of a JSON value taken from a valid body (a sub-slice with
// no whitespace around it), or 0 when there is none.
func kindOf(raw []byte) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// describe names the JSON kind for messages ("an array").
func describe(kind byte) string {
	switch kind {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	}
	return "a number"
}

// object is a JSON object inside a validated body, read in place. The zero object stands
// for a value that is not an object: every lookup in it finds nothing.
type object struct {
	raw []byte // the object's text, from '{' to '}'; nil when the value is not an object
	// members indexes the top-level object (offsets into raw); nil for a nested object,
	// whose members are found by walking raw.
	members []member
}

// ok reports whether o is an object.
func (o object) ok() bool { return o.raw != nil }

// get returns the value of o's member key, nil when there is none. As encoding/json does
// when it decodes an object into a map, the last member with a key wins.
func (o object) get(key string) []byte {
	if o.members != nil {
		for j := len(o.members) - 1; j >= 0; j-- {
			m := o.members[j]
			if keyIs(o.raw[m.k0:m.k1], key) {
				return o.raw[m.v0:m.v1]
			}
		}
		return nil
	}
	if o.raw == nil {
		return nil
	}
	var found []byte
	c := newCursor(o.raw)
	for {
		k, v, ok := c.member()
		if !ok {
			return found
		}
		if keyIs(k, key) {
			found = v
		}
	}
}

// has reports whether o has a member key.
func (o object) has(key string) bool { return o.get(key) != nil }

// str returns o[key] when it is a JSON string.
func (o object) str(key string) (string, bool) {
	raw := o.get(key)
	if kindOf(raw) != '"' {
		return "", false
	}
	return text(raw), true
}

// obj returns o[key] when it is a JSON object, else the zero object.
func (o object) obj(key string) object {
	raw := o.get(key)
	if kindOf(raw) != '{' {
		return object{}
	}
	return object{raw: raw}
}

// list returns o[key] when it is a JSON array: its text, walked with a cursor.
func (o object) list(key string) ([]byte, bool) {
	raw := o.get(key)
	if kindOf(raw) != '[' {
		return nil, false
	}
	return raw, true
}

// num returns o[key] when it is a finite JSON number (an int or a float).
func (o object) num(key string) (float64, bool) {
	n, ok := number(o.get(key))
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// integer returns o[key] when it is a JSON number holding an integer. Integers are read from
// their text, so they stay exact; a float like 3.0 is accepted when it is whole.
func (o object) integer(key string) (int, bool) {
	n, ok := number(o.get(key))
	if !ok {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && int64(int(i)) == i {
		return int(i), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
		return 0, false
	}
	return int(f), true
}

// id returns o[key] as a string when it is a non-empty JSON string or a JSON number
// (eCore job ids are integers: 42 → "42").
func (o object) id(key string) (string, bool) {
	raw := o.get(key)
	if kindOf(raw) == '"' {
		if s := text(raw); s != "" {
			return s, true
		}
	}
	if n, ok := number(raw); ok {
		return string(n), true
	}
	return "", false
}

// each calls fn with every member of o, in order, keys as they are written (quoted).
func (o object) each(fn func(key, val []byte)) {
	if o.members != nil {
		for _, m := range o.members {
			fn(o.raw[m.k0:m.k1], o.raw[m.v0:m.v1])
		}
		return
	}
	if o.raw == nil {
		return
	}
	c := newCursor(o.raw)
	for {
		k, v, ok := c.member()
		if !ok {
			return
		}
		fn(k, v)
	}
}

// number returns raw when it is a JSON number.
func number(raw []byte) ([]byte, bool) {
	k := kindOf(raw)
	if k != '-' && (k < '0' || k > '9') {
		return nil, false
	}
	return raw, true
}

// messageKeys hold an error's human text (SPEC 3.4), in the order they are read; they are
// never fields of a DRF field map.
var messageKeys = []string{"message", "reason", "detail", "error"}

// message extracts the vendor's human text from message, reason, detail, error when it is
// a string, or error.message when error is an object, in that order. A body that is one
// JSON string is its own message, and so is a list of strings (DRF's answer to a
// ValidationError raised without a field), joined. Empty when none is found.
func message(b body) string {
	switch b.kind {
	case '"':
		return clip(text(b.raw))
	case '[':
		// As json.Unmarshal into a []string: strings, and null as "", or nothing.
		var list []string
		c := newCursor(b.raw)
		for {
			item, ok := c.item()
			if !ok {
				break
			}
			switch item[0] {
			case '"':
				list = append(list, text(item))
			case 'n':
				list = append(list, "")
			default:
				return ""
			}
		}
		return clip(strings.TrimSpace(strings.Join(list, "; ")))
	}
	for _, k := range messageKeys {
		if s, ok := b.obj.str(k); ok && strings.TrimSpace(s) != "" {
			return clip(s)
		}
	}
	if s, ok := b.obj.obj("error").str("message"); ok && strings.TrimSpace(s) != "" {
		return clip(s)
	}
	return ""
}

// fields flattens a Django REST Framework error map into dotted keys (vendors/ecore.md §3):
// {"emails":{"3":["Not a valid email address."]}} → "emails.3": ["Not a valid email address."].
// Leaves are strings or lists of strings; message keys at the top level are skipped; nil
// when nothing is left.
func fields(o object) map[string][]string {
	out := map[string][]string{}
	for _, m := range sortedMembers(o) {
		if isMessageKey(m.key) {
			continue
		}
		addField(out, m.key, m.val, 1)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func addField(out map[string][]string, key string, raw []byte, depth int) {
	if depth > maxFieldDepth {
		return
	}
	switch kindOf(raw) {
	case '"':
		out[key] = append(out[key], text(raw))
	case '[':
		c := newCursor(raw)
		for i := 0; ; i++ {
			item, ok := c.item()
			if !ok {
				break
			}
			switch item[0] {
			case '"':
				addField(out, key, item, depth)
			case '{', '[':
				// DRF's list serializers give one error object per item, by position.
				addField(out, key+"."+strconv.Itoa(i), item, depth+1)
			}
		}
	case '{':
		for _, m := range sortedMembers(object{raw: raw}) {
			addField(out, key+"."+m.key, m.val, depth+1)
		}
	}
}

func isMessageKey(k string) bool {
	for _, m := range messageKeys {
		if k == m {
			return true
		}
	}
	return false
}

// keyed is an object member with its key decoded.
type keyed struct {
	key string
	val []byte
}

// sortedMembers lists o's members by decoded key, as a map decoded by encoding/json would
// hold them: one per key, the last one written.
func sortedMembers(o object) []keyed {
	var list []keyed
	o.each(func(k, v []byte) {
		list = append(list, keyed{text(k), v})
	})
	// A stable sort keeps duplicates in order: the last of each run is the one kept.
	slices.SortStableFunc(list, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := list[:0]
	for i, m := range list {
		if i+1 < len(list) && list[i+1].key == m.key {
			continue
		}
		out = append(out, m)
	}
	return out
}

// clip makes s valid UTF-8 and at most maxMessageBytes long, cut at a rune boundary.
func clip(s string) string {
	if len(s) > maxMessageBytes+utf8.UTFMax {
		s = s[:maxMessageBytes+utf8.UTFMax]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxMessageBytes {
		return s
	}
	cut := maxMessageBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// token quotes a vendor value for a message when it looks like a vocabulary word, and
// hides it otherwise, so that a message never carries an email or other private text.
func token(s string) string {
	if s == "" || len(s) > 32 {
		return "(value not shown)"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ' ') {
			return "(value not shown)"
		}
	}
	return strconv.Quote(s)
}

// ptr turns an optional number into a pointer, nil when absent.
func ptr(f float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &f
}

// intPtr turns an optional int into a pointer, nil when absent.
func intPtr(i int, ok bool) *int {
	if !ok {
		return nil
	}
	return &i
}

// credits returns c, or nil when it says nothing.
func credits(c Credits) *Credits {
	if c.Used == nil && c.Remaining == nil && c.Required == nil && c.Balance == nil {
		return nil
	}
	return &c
}

// result returns the finder fields that are present, or nil when none is.
func result(email, phone, country string) *Result {
	res := Result{Email: strings.TrimSpace(email), Phone: strings.TrimSpace(phone), Country: strings.TrimSpace(country)}
	if res == (Result{}) {
		return nil
	}
	return &res
}

// queryID is the id query parameter, as valid UTF-8 (Enrow single GETs carry no id in
// their body: SPEC 3.4).
func queryID(r Reply) string {
	// The first id, as url.ParseQuery(r.RawQuery).Get("id") reads it, without building
	// the map for one value.
	for q := r.RawQuery; q != ""; {
		var part string
		part, q, _ = strings.Cut(q, "&")
		if strings.Contains(part, ";") {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != "id" {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	return ""
}

// is2xx reports whether code is a success.
func is2xx(code int) bool { return code >= 200 && code < 300 }

// tally counts qualifications without a map until the count is done.
type tally struct {
	quals [8]Qualification
	n     [8]int
	len   int
}

func (t *tally) add(q Qualification, n int) {
	for i := range t.len {
		if t.quals[i] == q {
			t.n[i] += n
			return
		}
	}
	if t.len < len(t.quals) { // the closed set has 6: always
		t.quals[t.len], t.n[t.len] = q, n
		t.len++
	}
}

// counts is the tally as a map, nil when nothing was counted.
func (t *tally) counts() map[Qualification]int {
	if t.len == 0 {
		return nil
	}
	m := make(map[Qualification]int, t.len)
	for i := range t.len {
		m[t.quals[i]] = t.n[i]
	}
	return m
}

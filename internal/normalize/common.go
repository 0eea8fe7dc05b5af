package normalize

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxMessageBytes caps error.message: a body that is not JSON goes there truncated to
// 4 KiB (SPEC 3.4), and so does any message taken from a vendor body.
const maxMessageBytes = 4096

// maxFieldDepth bounds how deep a DRF field map is flattened.
const maxFieldDepth = 16

// object is a decoded JSON object whose values are still raw.
type object map[string]json.RawMessage

// body is a vendor's JSON body, read once.
type body struct {
	kind byte   // first byte of the value: '{', '[', '"', 't', 'f', 'n', or a number's
	obj  object // the top-level object; nil when the body is not one
	raw  []byte
}

// readBody reads a body already known to be valid JSON.
func readBody(raw []byte) body {
	b := body{kind: kindOf(raw), raw: raw}
	if b.kind == '{' {
		_ = json.Unmarshal(raw, &b.obj) // valid JSON: cannot fail
	}
	return b
}

// kindOf returns the first significant byte of a JSON value, or 0 when there is none.
func kindOf(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
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

// str returns o[key] when it is a JSON string.
func (o object) str(key string) (string, bool) {
	raw, ok := o[key]
	if !ok || kindOf(raw) != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// obj returns o[key] when it is a JSON object, else nil.
func (o object) obj(key string) object {
	raw, ok := o[key]
	if !ok || kindOf(raw) != '{' {
		return nil
	}
	var v object
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

// list returns o[key] when it is a JSON array.
func (o object) list(key string) ([]json.RawMessage, bool) {
	raw, ok := o[key]
	if !ok || kindOf(raw) != '[' {
		return nil, false
	}
	var v []json.RawMessage
	if json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return v, true
}

// num returns o[key] when it is a finite JSON number (an int or a float).
func (o object) num(key string) (float64, bool) {
	n, ok := number(o[key])
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// integer returns o[key] when it is a JSON number holding an integer. Integers are read from
// their text, so they stay exact; a float like 3.0 is accepted when it is whole.
func (o object) integer(key string) (int, bool) {
	n, ok := number(o[key])
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil && int64(int(i)) == i {
		return int(i), true
	}
	f, err := n.Float64()
	if err != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
		return 0, false
	}
	return int(f), true
}

// id returns o[key] as a string when it is a non-empty JSON string or a JSON number
// (eCore job ids are integers: 42 → "42").
func (o object) id(key string) (string, bool) {
	if s, ok := o.str(key); ok && s != "" {
		return s, true
	}
	if n, ok := number(o[key]); ok {
		return n.String(), true
	}
	return "", false
}

// number returns raw as a json.Number when it is a JSON number.
func number(raw json.RawMessage) (json.Number, bool) {
	k := kindOf(raw)
	if k != '-' && (k < '0' || k > '9') {
		return "", false
	}
	return json.Number(bytes.TrimSpace(raw)), true
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
		var s string
		_ = json.Unmarshal(b.raw, &s)
		return clip(s)
	case '[':
		var list []string
		if json.Unmarshal(b.raw, &list) == nil {
			return clip(strings.TrimSpace(strings.Join(list, "; ")))
		}
		return ""
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
	for _, k := range sortedKeys(o) {
		if isMessageKey(k) {
			continue
		}
		addField(out, k, o[k], 1)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func addField(out map[string][]string, key string, raw json.RawMessage, depth int) {
	if depth > maxFieldDepth {
		return
	}
	switch kindOf(raw) {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[key] = append(out[key], s)
		}
	case '[':
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		for i, item := range items {
			switch kindOf(item) {
			case '"':
				addField(out, key, item, depth)
			case '{', '[':
				// DRF's list serializers give one error object per item, by position.
				addField(out, key+"."+strconv.Itoa(i), item, depth+1)
			}
		}
	case '{':
		var o object
		_ = json.Unmarshal(raw, &o)
		for _, k := range sortedKeys(o) {
			addField(out, key+"."+k, o[k], depth+1)
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

func sortedKeys(o object) []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
	return strings.ToValidUTF8(r.Query.Get("id"), "\uFFFD")
}

// is2xx reports whether code is a success.
func is2xx(code int) bool { return code >= 200 && code < 300 }

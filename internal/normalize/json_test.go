package normalize

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// jsonSeeds are inputs at the edges of what json.Valid accepts.
var jsonSeeds = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `.5`, `-.5`,
	`+1`, `1.5e3.2`, `true`, `tru`, `truex`, `false`, `null`, `nul`, `NaN`, `Infinity`,
	` {"a" : 1 , "b":[1,2,{"c":null}] } `, `{"a":1,}`, `[1,]`, `{,}`, `[,1]`, `{"a"}`, `{"a":}`, `{1:2}`,
	`{"a":1 "b":2}`, `[1 2]`, `{"a":1}}`, `[[]`, `]`, `}`, `"\u00e9\n\t\"\\\/\b\f\r"`, `"\u12"`, `"\u12g4"`,
	`"\x"`, `"\'"`, "\"a\tb\"", "\"a\x00b\"", "\"\xff\xfe\"", "\"\xed\xa0\x80\"", `"\ud800"`, `"\ud83d\ude00"`,
	"\ufeff{}", "{}\x00", "\t\r\n{}\t\r\n", "\v{}", `{"a":1,"a":2}`, `{"a":1,"\u0061":[2]}`, `[1,"a",{"b":"c"},[]]`,
	`{"k\"ey":"v\\"}`, `{"a":[{"b":1},{"b":"x","b":"y"},[{"b":2}],{"c":{"b":3}},{},3,{"b":"y"}],"a":5}`,
	`{"a":[{"b":1}],"a":[{"\u0062":"z"},{"b":[]}]}`,
	`{"a":[{"b":1},{"b":2},{"b":3},{"b":4},{"b":5},{"b":6},{"b":7},{"b":8},{"b":9}]}`,
	`{"ab\u0063":1,"\u0061":2,"\u0062\"":3,"status\u0000":4,"st\u0061tus":5,"\ud800":6,"\u00e9":7}`,
	"{\"a\xff\":1,\"\xffb\":2}", `"0123456789abcdef\"0123456789abcdef\\0123456789abcdef"`, "\"0123456789\x1f0123\"",
	`{"results":[{"qualification":"valid"},{"qualification":"Valid "}],"x":[{"qualification":"invalid"}]}`,
	`{"qualification":"valid","qualification":"invalid"}`, `"abcdefghijklmnopqrstuvwxyz"`,
}

// TestScanSeeds checks the seeds, and the nesting limit (not a fuzz seed: reading 10,000
// levels in place, as checkScan does, takes a second).
func TestScanSeeds(t *testing.T) {
	deep := []string{
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	}
	for _, s := range append(jsonSeeds, deep...) {
		checkScan(t, []byte(s))
	}
}

// FuzzScan checks that scan accepts exactly what json.Valid accepts and that every value
// read in place (top-level members, cursors, strings) is what encoding/json decodes.
func FuzzScan(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	for _, vendor := range []string{Enrow, ECore} {
		files, _ := filepath.Glob(filepath.Join("testdata", vendor, "*.json"))
		for _, file := range files {
			f.Add(loadCase(f, file, vendor).Body)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScan(t, data) })
}

func checkScan(t *testing.T, data []byte) {
	t.Helper()
	val, members, ok := scan(data, nil)
	if want := json.Valid(data); ok != want {
		t.Fatalf("scan(%q) = %v, json.Valid = %v", data, ok, want)
	}
	picks := []*pick{{list: "a", key: "b"}, {list: "results", key: "qualification"}, {list: "records", key: "status"}}
	for _, p := range picks {
		val2, members2, ok2 := scan(data, p)
		if ok2 != ok || !bytes.Equal(val, val2) || !reflect.DeepEqual(members, members2) {
			t.Fatalf("scan(%q) with a pick reads differently", data)
		}
	}
	if !ok {
		return
	}
	for _, p := range picks {
		var o object
		if val[0] == '{' {
			o = object{raw: val, members: members}
		}
		checkPick(t, data, o, p)
	}
	if !bytes.Equal(val, bytes.Trim(data, " \t\r\n")) {
		t.Fatalf("scan(%q) value %q", data, val)
	}
	var want any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&want); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	if got := inPlace(val); !reflect.DeepEqual(got, want) {
		t.Fatalf("read in place %q:\n got %#v\nwant %#v", data, got, want)
	}
	if val[0] == '{' {
		// keyIs agrees with decoding every key, on the key and on ASCII near misses.
		object{raw: val, members: members}.each(func(k, _ []byte) {
			dec := text(k)
			for _, key := range []string{dec, "a", "b", "status", dec + "x", strings.TrimSuffix(dec, "x")} {
				if !isASCII(key) {
					continue
				}
				if got, want := keyIs(k, key), dec == key; got != want {
					t.Fatalf("keyIs(%s, %q) = %v, want %v", k, key, got, want)
				}
			}
		})
		// The indexed members and a walk of the object agree, lookups included.
		walked := object{raw: val}
		indexed := object{raw: val, members: members}
		var keys []string
		indexed.each(func(k, _ []byte) { keys = append(keys, text(k)) })
		var n int
		walked.each(func(k, _ []byte) {
			if n >= len(keys) || text(k) != keys[n] {
				t.Fatalf("%q: member %d is %s walked, indexed %q", data, n, k, keys)
			}
			n++
		})
		if n != len(keys) {
			t.Fatalf("%q: %d members walked, %d indexed", data, n, len(keys))
		}
		for _, k := range append(keys, "absent") {
			if a, b := indexed.get(k), walked.get(k); !bytes.Equal(a, b) || (a == nil) != (b == nil) {
				t.Fatalf("%q: get(%q) = %q indexed, %q walked", data, k, a, b)
			}
		}
	}
}

// inPlace decodes a valid value with the in-place readers, as json.Decoder with UseNumber
// decodes it into an any.
func inPlace(raw []byte) any {
	switch raw[0] {
	case '{':
		m := map[string]any{}
		object{raw: raw}.each(func(k, v []byte) { m[text(k)] = inPlace(v) })
		return m
	case '[':
		list := []any{}
		c := newCursor(raw)
		for {
			item, ok := c.item()
			if !ok {
				return list
			}
			list = append(list, inPlace(item))
		}
	case '"':
		return text(raw)
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	}
	return json.Number(raw)
}

// checkPick compares what scan picked with a walk of the array it was picked from.
func checkPick(t *testing.T, data []byte, o object, p *pick) {
	t.Helper()
	list, isList := o.list(p.list)
	vals, n, ok := p.of(list)
	if !isList {
		if ok {
			t.Fatalf("%q: picked %q from %s, which is not an array", data, p.key, p.list)
		}
		return
	}
	want := map[string]int{}
	wantN := eachField(list, p.key, func(v []byte) {
		if v != nil {
			want[string(v)]++
		}
	})
	if len(want) > len(p.vals) {
		if ok || !p.overflow {
			t.Fatalf("%q: %d distinct values picked, overflow %v, of %v", data, len(want), p.overflow, ok)
		}
		return
	}
	if !ok {
		t.Fatalf("%q: nothing picked from %s", data, list)
	}
	got := map[string]int{}
	for _, v := range vals {
		got[string(v.raw)] += v.n
	}
	if n != wantN || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: picked %v from %d items, walked %v from %d", data, got, n, want, wantN)
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestCountsPickedOrWalked checks that the counts of a bulk result or a validation job are
// the same from what scan picked and from a walk of the items, also when there are more
// distinct values than a pick holds.
func TestCountsPickedOrWalked(t *testing.T) {
	words := []string{`"valid"`, `"Valid"`, `" VALID "`, `"invalid"`, `"INVALID"`, `"unknown"`, `"Unknown"`,
		`"error"`, `"pending"`, `"ongoing"`, `"v\u0061lid"`, `"catch_all"`, `5`, `null`, `"nope"`}
	for _, distinct := range []int{1, 3, 8, 9, len(words)} {
		var items []string
		for i := range 40 {
			w := words[i%distinct]
			items = append(items, `{"x":1,"qualification":`+w+`,"status":`+w+`}`)
		}
		items = append(items, `[]`, `{}`, `"s"`)
		list := "[" + strings.Join(items, ",") + "]"

		p := &pick{list: "results", key: "qualification"}
		b, ok := parseBody([]byte(`{"results":`+list+`}`), p)
		if !ok {
			t.Fatal("invalid body")
		}
		results, _ := b.obj.list("results")
		if _, _, picked := p.of(results); picked != (distinct <= len(p.vals)) {
			t.Errorf("%d distinct: picked %v", distinct, picked)
		}
		for _, op := range []Operation{OpEmailFindBulk, OpEmailVerifyBulk, OpPhoneFindBulk} {
			gotCounts, gotN := countResults(op, results, p)
			wantCounts, wantN := countResults(op, results, nil)
			if gotN != wantN || !reflect.DeepEqual(gotCounts, wantCounts) {
				t.Errorf("%s, %d distinct: picked %v of %d, walked %v of %d", op, distinct, gotCounts, gotN, wantCounts, wantN)
			}
		}

		job := []byte(`{"status":"Processed","total_records":43,"records":` + list + `}`)
		p = &pick{list: "records", key: "status"}
		b, _ = parseBody(job, p)
		picked := validationDetails(Envelope{Job: &Job{State: JobCompleted}}, b.obj, p)
		walked := validationDetails(Envelope{Job: &Job{State: JobCompleted}}, b.obj, nil)
		if !reflect.DeepEqual(picked, walked) {
			t.Errorf("job, %d distinct: picked %+v, walked %+v", distinct, picked.Job, walked.Job)
		}
	}
}

// TestQueryIDReadsAsParseQuery: queryID reads the id as url.ParseQuery then Get would.
func TestQueryIDReadsAsParseQuery(t *testing.T) {
	for _, q := range []string{"", "id=abc", "foo=1&id=a%20b", "id=1&id=2", "id", "id=", "%69d=x", "id=%zz&id=ok",
		"id=a;b", "x=1;id=2&id=3", "&&id=+plus+", "ID=up", "id=%C3%28", "id=a&b", "=v&id=w"} {
		vals, _ := url.ParseQuery(q)
		want := strings.ToValidUTF8(vals.Get("id"), "\uFFFD")
		if got := queryID(Reply{RawQuery: q}); got != want {
			t.Errorf("queryID(%q) = %q, want %q", q, got, want)
		}
	}
}

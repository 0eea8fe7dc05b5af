package normalize

import (
	"math"
	"slices"
	"strconv"
)

// AppendJSON appends the envelope's JSON encoding, byte for byte what encoding/json
// makes of it (Data excluded), without reflection: the envelope is encoded on every
// answer. It reports false, having appended nothing, for an envelope it leaves to
// encoding/json: a string that needs escaping, a float that is not finite, error fields.
func (e *Envelope) AppendJSON(b []byte) ([]byte, bool) {
	start := len(b)
	w := jsonWriter{b: b, ok: true}
	w.raw(`{"status":`)
	w.str(string(e.Status))
	if e.Qualification != "" {
		w.raw(`,"qualification":`)
		w.str(string(e.Qualification))
	}
	w.raw(`,"vendor":`)
	w.str(e.Vendor)
	w.raw(`,"operation":`)
	w.str(string(e.Operation))
	if e.ID != "" {
		w.raw(`,"id":`)
		w.str(e.ID)
	}
	if r := e.Result; r != nil {
		w.raw(`,"result":{`)
		sep := w.optStr("", "email", r.Email)
		sep = w.optStr(sep, "phone", r.Phone)
		w.optStr(sep, "country", r.Country)
		w.raw(`}`)
	}
	if j := e.Job; j != nil {
		w.raw(`,"job":{"state":`)
		w.str(j.State)
		if j.Done != nil {
			w.raw(`,"done":`)
			w.int(int64(*j.Done))
		}
		if j.Total != nil {
			w.raw(`,"total":`)
			w.int(int64(*j.Total))
		}
		if len(j.Counts) > 0 {
			keys := make([]Qualification, 0, len(j.Counts))
			for k := range j.Counts {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			w.raw(`,"counts":{`)
			for i, k := range keys {
				if i > 0 {
					w.raw(`,`)
				}
				w.str(string(k))
				w.raw(`:`)
				w.int(int64(j.Counts[k]))
			}
			w.raw(`}`)
		}
		w.raw(`}`)
	}
	if c := e.Credits; c != nil {
		w.raw(`,"credits":{`)
		sep := w.optFloat("", "used", c.Used)
		sep = w.optFloat(sep, "remaining", c.Remaining)
		sep = w.optFloat(sep, "required", c.Required)
		w.optFloat(sep, "balance", c.Balance)
		w.raw(`}`)
	}
	if e.RetryAfterSeconds != 0 {
		w.raw(`,"retry_after_seconds":`)
		w.int(int64(e.RetryAfterSeconds))
	}
	if er := e.Error; er != nil {
		w.raw(`,"error":{"code":`)
		w.str(er.Code)
		if er.Message != "" {
			w.raw(`,"message":`)
			w.str(er.Message)
		}
		if len(er.Fields) > 0 {
			w.ok = false // a vendor's field names and messages: left to encoding/json
		}
		w.raw(`}`)
	}
	if len(e.Failover) > 0 {
		w.raw(`,"failover":[`)
		for i, f := range e.Failover {
			if i > 0 {
				w.raw(`,`)
			}
			w.raw(`{"vendor":`)
			w.str(f.Vendor)
			w.raw(`,"status":`)
			w.str(string(f.Status))
			w.raw(`}`)
		}
		w.raw(`]`)
	}
	if u := e.Upstream; u != nil {
		w.raw(`,"upstream":{"status":`)
		w.int(int64(u.Status))
		w.raw(`,"attempts":`)
		w.int(int64(u.Attempts))
		w.raw(`,"duration_ms":`)
		w.int(u.DurationMS)
		w.raw(`}`)
	}
	w.raw(`,"request_id":`)
	w.str(e.RequestID)
	w.raw(`}`)
	if !w.ok {
		return w.b[:start], false
	}
	return w.b, true
}

// jsonWriter appends JSON; ok turns false at the first value it does not write exactly
// as encoding/json would.
type jsonWriter struct {
	b  []byte
	ok bool
}

func (w *jsonWriter) raw(s string) { w.b = append(w.b, s...) }

func (w *jsonWriter) int(n int64) { w.b = strconv.AppendInt(w.b, n, 10) }

// str writes s quoted when no byte of it needs escaping (encoding/json escapes controls,
// quotes, backslashes, <, > and & and rewrites anything not ASCII it finds invalid).
func (w *jsonWriter) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			w.ok = false
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

// optStr writes an omitempty string member after sep, returning the separator for the
// next one.
func (w *jsonWriter) optStr(sep, name, s string) string {
	if s == "" {
		return sep
	}
	w.raw(sep)
	w.b = append(w.b, '"')
	w.raw(name)
	w.raw(`":`)
	w.str(s)
	return ","
}

// optFloat writes an omitempty *float64 member as encoding/json formats a float64.
func (w *jsonWriter) optFloat(sep, name string, f *float64) string {
	if f == nil {
		return sep
	}
	w.raw(sep)
	w.b = append(w.b, '"')
	w.raw(name)
	w.raw(`":`)
	v := *f
	if math.IsNaN(v) || math.IsInf(v, 0) {
		w.ok = false
		return ","
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	w.b = strconv.AppendFloat(w.b, v, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(w.b); n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
	return ","
}

package vendorsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Runtime switches, for the demo (no credential, never recorded as calls):
//
//	GET  /_sim/faults            → the faults in force (JSON of Faults)
//	PUT  /_sim/faults            ← the whole Faults object; missing keys mean zero
//	GET  /_sim/credits           → {"credits": 1000000}
//	PUT  /_sim/credits           ← {"credits": 0}
//	POST /_sim/script            ← [{"status":503,"body":"...","header":{"Retry-After":"2"},"hang":false,"delay":"200ms"}]
//	DELETE /_sim/script          clears the script
//
// Faults JSON: {"error_rate":0.1,"error_status":503,"rate_limit_rate":0,"retry_after":"2s",
// "latency":"200ms","hang":false,"html_errors":false}.

type faultsJSON struct {
	ErrorRate     float64 `json:"error_rate"`
	ErrorStatus   int     `json:"error_status,omitempty"`
	RateLimitRate float64 `json:"rate_limit_rate"`
	RetryAfter    string  `json:"retry_after"`
	Latency       string  `json:"latency"`
	Hang          bool    `json:"hang"`
	HTMLErrors    bool    `json:"html_errors"`
}

// MarshalJSON encodes f with snake_case keys and Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		ErrorRate: f.ErrorRate, ErrorStatus: f.ErrorStatus, RateLimitRate: f.RateLimitRate,
		RetryAfter: f.RetryAfter.String(), Latency: f.Latency.String(),
		Hang: f.Hang, HTMLErrors: f.HTMLErrors,
	})
}

// UnmarshalJSON decodes the form MarshalJSON writes; unknown keys, rates outside [0, 1],
// negative or unparsable durations are errors.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w faultsJSON
	if err := strictDecode(b, &w); err != nil {
		return err
	}
	ra, err := parseDuration("retry_after", w.RetryAfter)
	if err != nil {
		return err
	}
	lat, err := parseDuration("latency", w.Latency)
	if err != nil {
		return err
	}
	if w.ErrorRate < 0 || w.ErrorRate > 1 || w.RateLimitRate < 0 || w.RateLimitRate > 1 {
		return errors.New("error_rate and rate_limit_rate must be within [0, 1]")
	}
	if w.ErrorStatus != 0 && (w.ErrorStatus < 100 || w.ErrorStatus > 599) {
		return fmt.Errorf("error_status %d is not an HTTP status", w.ErrorStatus)
	}
	*f = Faults{ErrorRate: w.ErrorRate, ErrorStatus: w.ErrorStatus, RateLimitRate: w.RateLimitRate,
		RetryAfter: ra, Latency: lat, Hang: w.Hang, HTMLErrors: w.HTMLErrors}
	return nil
}

type answerJSON struct {
	Status int                        `json:"status"`
	Header map[string]json.RawMessage `json:"header"`
	Body   string                     `json:"body"`
	Hang   bool                       `json:"hang"`
	Delay  string                     `json:"delay"`
}

// UnmarshalJSON decodes {"status","header","body","hang","delay"}; header values may be a
// string or an array of strings, delay is a Go duration string.
func (a *Answer) UnmarshalJSON(b []byte) error {
	var w answerJSON
	if err := strictDecode(b, &w); err != nil {
		return err
	}
	d, err := parseDuration("delay", w.Delay)
	if err != nil {
		return err
	}
	if w.Status != 0 && (w.Status < 100 || w.Status > 599) {
		return fmt.Errorf("status %d is not an HTTP status", w.Status)
	}
	h := http.Header{}
	for k, raw := range w.Header {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			h.Add(k, one)
			continue
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return fmt.Errorf("header %q: want a string or an array of strings", k)
		}
		for _, v := range many {
			h.Add(k, v)
		}
	}
	*a = Answer{Status: w.Status, Header: h, Body: w.Body, Hang: w.Hang, Delay: d}
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func parseDuration(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative Go duration", name, s)
	}
	return d, nil
}

// control serves /_sim/.
func (c *core) control(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		return
	}
	bad := func(err error) { writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()}) }
	switch r.URL.Path {
	case "/_sim/faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, c.Faults())
		case http.MethodPut:
			var f Faults
			if err := json.Unmarshal(body, &f); err != nil {
				bad(err)
				return
			}
			c.SetFaults(f)
			writeJSON(w, http.StatusOK, f)
		default:
			methodNotAllowed(w, "GET, PUT")
		}
	case "/_sim/credits":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]float64{"credits": c.Credits()})
		case http.MethodPut:
			var v struct {
				Credits *float64 `json:"credits"`
			}
			if err := strictDecode(body, &v); err != nil || v.Credits == nil || *v.Credits < 0 {
				bad(errors.New(`want {"credits": <non-negative number>}`))
				return
			}
			c.SetCredits(*v.Credits)
			writeJSON(w, http.StatusOK, map[string]float64{"credits": *v.Credits})
		default:
			methodNotAllowed(w, "GET, PUT")
		}
	case "/_sim/script":
		switch r.Method {
		case http.MethodPost:
			var as []Answer
			if err := json.Unmarshal(body, &as); err != nil {
				bad(err)
				return
			}
			c.Script(as...)
			c.mu.Lock()
			n := len(c.script)
			c.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]int{"queued": n})
		case http.MethodDelete:
			c.mu.Lock()
			c.script = nil
			c.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]int{"queued": 0})
		default:
			methodNotAllowed(w, "POST, DELETE")
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown simulator control path"})
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}

package benchsrv

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// EnrowResult is an Enrow email-finder result as documented (vendors/enrow.md §2.1): 200
// with the qualification, the address, the caller's custom fields and what Enrow read of
// the person; 331 bytes. Enrow's single results carry no id.
const EnrowResult = `{"email":"michael.scott@dundermifflin.com","qualification":"valid",` +
	`"custom":{"crm_id":"lead_001","campaign":"q4-outbound"},` +
	`"info":{"company_domain":"dundermifflin.com","company_name":"Dunder Mifflin",` +
	`"fullname":"Michael Scott","firstname":"Michael","lastname":"Scott",` +
	`"linkedin_url":"https://www.linkedin.com/in/michael-scott-dm"}}`

// Upstream is the vendor stand-in's handler: GET /email/find/single?id=… answers
// EnrowResult at once or after Delay; GET /account/info answers some credits; GET /_stats
// the polls served and the most held at once; POST /_stats/reset restarts that maximum.
type Upstream struct {
	Delay time.Duration

	requests, inflight, maxInflight atomic.Int64
}

// Requests is the number of result polls served so far.
func (u *Upstream) Requests() int64 { return u.requests.Load() }

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/email/find/single":
		u.result(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/account/info":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"credits":100000}`))
	case r.Method == http.MethodGet && r.URL.Path == "/_stats":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"requests":%d,"inflight":%d,"max_inflight":%d}`,
			u.requests.Load(), u.inflight.Load(), u.maxInflight.Load())
	case r.Method == http.MethodPost && r.URL.Path == "/_stats/reset":
		u.maxInflight.Store(u.inflight.Load())
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

var (
	resultBody    = []byte(EnrowResult)
	contentType   = []string{"application/json"}
	contentLength = []string{strconv.Itoa(len(EnrowResult))}
)

func (u *Upstream) result(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	if u.Delay > 0 {
		n := u.inflight.Add(1)
		for {
			m := u.maxInflight.Load()
			if n <= m || u.maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		t := time.NewTimer(u.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		u.inflight.Add(-1)
	}
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = contentLength
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resultBody)
}

// Inflight is the number of result polls being held now (with a Delay).
func (u *Upstream) Inflight() int64 { return u.inflight.Load() }

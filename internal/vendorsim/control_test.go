package vendorsim

import (
	"testing"
	"time"
)

func TestControl(t *testing.T) {
	s := NewEnrow(Options{})
	srv := serve(t, s)
	put := `{"error_rate":0.25,"error_status":502,"rate_limit_rate":0.5,"retry_after":"2s","latency":"200ms","hang":false,"html_errors":true}`
	expect(t, do(t, srv, req{method: "PUT", path: "/_sim/faults", body: put}), 200, put)
	want := Faults{ErrorRate: 0.25, ErrorStatus: 502, RateLimitRate: 0.5, RetryAfter: 2 * time.Second,
		Latency: 200 * time.Millisecond, HTMLErrors: true}
	if got := s.Faults(); got != want {
		t.Errorf("Faults(): got %+v, want %+v", got, want)
	}
	expect(t, do(t, srv, req{path: "/_sim/faults"}), 200, put)
	for _, bad := range []string{`{"error_rate":2}`, `{"latency":"soon"}`, `{"nope":1}`, `[`} {
		if got := do(t, srv, req{method: "PUT", path: "/_sim/faults", body: bad}); got.status != 400 {
			t.Errorf("PUT %s: got %d, want 400", bad, got.status)
		}
	}
	expect(t, do(t, srv, req{method: "PUT", path: "/_sim/faults", body: `{}`}), 200,
		`{"error_rate":0,"rate_limit_rate":0,"retry_after":"0s","latency":"0s","hang":false,"html_errors":false}`)

	expect(t, do(t, srv, req{method: "PUT", path: "/_sim/credits", body: `{"credits":0}`}), 200, `{"credits":0}`)
	expect(t, do(t, srv, req{path: "/_sim/credits"}), 200, `{"credits":0}`)
	if s.Credits() != 0 {
		t.Errorf("Credits(): got %v, want 0", s.Credits())
	}
	if got := do(t, srv, req{method: "PUT", path: "/_sim/credits", body: `{"credit":5}`}); got.status != 400 {
		t.Errorf("bad credits PUT: got %d, want 400", got.status)
	}

	script := `[{"status":503,"header":{"Retry-After":"3","X-Many":["a","b"]},"body":"{\"message\":\"down\"}","delay":"1ms"},{"status":201}]`
	expect(t, do(t, srv, req{method: "POST", path: "/_sim/script", body: script}), 200, `{"queued":2}`)
	got := do(t, srv, req{path: "/account/info"})
	expect(t, got, 503, `{"message":"down"}`)
	if got.header.Get("Retry-After") != "3" || len(got.header.Values("X-Many")) != 2 {
		t.Errorf("scripted headers: got %v", got.header)
	}
	expect(t, do(t, srv, req{method: "DELETE", path: "/_sim/script"}), 200, `{"queued":0}`)
	if got := do(t, srv, req{method: "POST", path: "/_sim/script", body: `[{"status":99}]`}); got.status != 400 {
		t.Errorf("bad script: got %d, want 400", got.status)
	}
	if got := do(t, srv, req{path: "/_sim/nothing"}); got.status != 404 {
		t.Errorf("unknown control: got %d, want 404", got.status)
	}
	if got := do(t, srv, req{method: "POST", path: "/_sim/faults"}); got.status != 405 {
		t.Errorf("POST faults: got %d, want 405", got.status)
	}
	if n := s.CallCount(); n != 1 {
		t.Errorf("only the /account/info call is recorded: got %d", n)
	}
}

func TestProgress(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		polls int
		for_  time.Duration
		steps []time.Duration // time since creation of each GET
		want  []stage
	}{
		{"immediate", 0, 0, []time.Duration{0}, []stage{stageDone}},
		{"two polls", 2, 0, []time.Duration{0, 0, 0, 0}, []stage{stageQueued, stageRunning, stageDone, stageDone}},
		{"time only", 0, time.Second, []time.Duration{0, 500 * time.Millisecond, time.Second}, []stage{stageQueued, stageRunning, stageDone}},
		{"time first", 5, time.Second, []time.Duration{0, time.Second}, []stage{stageQueued, stageDone}},
		{"polls first", 1, time.Hour, []time.Duration{0, 0}, []stage{stageQueued, stageDone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := progress{created: t0, pendingPolls: tc.polls, pendingFor: tc.for_}
			for i, d := range tc.steps {
				if got := p.advance(t0.Add(d)); got != tc.want[i] {
					t.Errorf("GET %d: got stage %d, want %d", i+1, got, tc.want[i])
				}
			}
		})
	}
}

func TestPendingFor(t *testing.T) {
	clock := newClock()
	s := NewEnrow(Options{PendingFor: 2 * time.Second, Now: clock.Now})
	srv := serve(t, s)
	key := map[string]string{"x-api-key": "k"}
	id := do(t, srv, req{method: "POST", path: "/email/verify/single", header: key, body: `{"email":"a@b.com"}`}).obj(t)["id"].(string)
	expect(t, do(t, srv, req{path: "/email/verify/single?id=" + id, header: key}), 202, `{"qualification":"ongoing"}`)
	clock.Advance(2 * time.Second)
	expect(t, do(t, srv, req{path: "/email/verify/single?id=" + id, header: key}), 200,
		`{"email":"a@b.com","qualification":"valid"}`)

	s.SetPending(1, 0) // for searches created from now on
	id2 := do(t, srv, req{method: "POST", path: "/email/verify/single", header: key, body: `{"email":"c@d.com"}`}).obj(t)["id"].(string)
	expect(t, do(t, srv, req{path: "/email/verify/single?id=" + id2, header: key}), 202, `{"qualification":"ongoing"}`)
	expect(t, do(t, srv, req{path: "/email/verify/single?id=" + id2, header: key}), 200, `{"email":"c@d.com","qualification":"valid"}`)
}

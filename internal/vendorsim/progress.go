package vendorsim

import "time"

// stage is where a simulated search or job stands.
type stage int

const (
	stageQueued  stage = iota // created, no result GET answered yet
	stageRunning              // at least one result GET answered "running"
	stageDone                 // final
)

// progress decides when a search or job becomes final (see Options.PendingFor).
type progress struct {
	created      time.Time
	polls        int // result GETs answered so far
	pendingPolls int
	pendingFor   time.Duration
	done         bool
}

// newProgress captures the pending settings. Caller holds mu.
func (c *core) newProgress() progress {
	return progress{created: c.now(), pendingPolls: c.pendingPolls, pendingFor: c.pendingFor}
}

// peek returns the stage without counting a GET.
func (p *progress) peek(now time.Time) stage {
	if !p.done {
		switch {
		case p.pendingPolls <= 0 && p.pendingFor <= 0:
			p.done = true
		case p.pendingPolls > 0 && p.polls >= p.pendingPolls:
			p.done = true
		case p.pendingFor > 0 && now.Sub(p.created) >= p.pendingFor:
			p.done = true
		}
	}
	switch {
	case p.done:
		return stageDone
	case p.polls == 0:
		return stageQueued
	}
	return stageRunning
}

// advance returns the stage a result GET is answered with, and counts the GET.
func (p *progress) advance(now time.Time) stage {
	s := p.peek(now)
	p.polls++
	return s
}

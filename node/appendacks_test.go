package node

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestAppendAcksSilence: a follower is silent only once this leader has led
// for ackWindow, and the refusal can tell one that stopped answering from one
// that never answered (just added: a retry tells).
func TestAppendAcksSilence(t *testing.T) {
	var a appendAcks
	now := time.Now()
	longAgo := now.Add(-time.Minute)
	if a.silent("r2", longAgo, now) {
		t.Fatal("silent without a transport that records answers")
	}
	a.last = map[raft.ServerID]time.Time{}
	for _, c := range []struct {
		name     string
		leading  time.Time
		last     time.Time // zero: never answered
		silent   bool
		answered bool
	}{
		{"new leader: too soon to tell", now.Add(-ackWindow / 2), time.Time{}, false, false},
		{"never answered", longAgo, time.Time{}, true, false},
		{"answered lately", longAgo, now.Add(-ackWindow / 4), false, true},
		{"stopped answering", longAgo, now.Add(-2 * ackWindow), true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			delete(a.last, "r2")
			if !c.last.IsZero() {
				a.last["r2"] = c.last
			}
			if got := a.silent("r2", c.leading, now); got != c.silent {
				t.Errorf("silent = %v, want %v", got, c.silent)
			}
			if got := a.answered("r2"); got != c.answered {
				t.Errorf("answered = %v, want %v", got, c.answered)
			}
			a.forget("r2") // added back at another address
			if a.answered("r2") || !a.silent("r2", c.leading, now) && now.Sub(c.leading) >= ackWindow {
				t.Errorf("after forget: answered %v, silent %v", a.answered("r2"), a.silent("r2", c.leading, now))
			}
		})
	}
}

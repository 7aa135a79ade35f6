package window

import (
	"strings"
	"testing"
	"time"
)

// atCase is one instant to decide. Instants carry explicit offsets so each
// row reads as a real instant, independent of the schedule's zone.
type atCase struct {
	name   string
	at     string // "2006-01-02T15:04Z07:00" or with seconds
	open   bool
	reason string // substring expected in Reason when closed; "" skips the check
	next   string // expected NextOpen when closed; "" means zero (none in horizon)
}

func mustParse(t testing.TB, s Spec) *Schedule {
	t.Helper()
	sch, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return sch
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ts(t testing.TB, v string) time.Time {
	t.Helper()
	for _, l := range []string{"2006-01-02T15:04Z07:00", time.RFC3339Nano} {
		if tm, err := time.Parse(l, v); err == nil {
			return tm
		}
	}
	t.Fatalf("bad test time %q", v)
	return time.Time{}
}

func runAt(t *testing.T, s *Schedule, cases []atCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := s.At(ts(t, c.at))
			if d.Open != c.open {
				t.Fatalf("At(%s).Open = %v, want %v (reason %q)", c.at, d.Open, c.open, d.Reason)
			}
			if c.open {
				if d.Reason != "" || !d.NextOpen.IsZero() {
					t.Errorf("open decision carries reason %q / next %v", d.Reason, d.NextOpen)
				}
				return
			}
			if d.Reason == "" {
				t.Errorf("closed decision has no reason")
			}
			if c.reason != "" && !strings.Contains(d.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, c.reason)
			}
			switch {
			case c.next == "" && !d.NextOpen.IsZero():
				t.Errorf("NextOpen = %v, want zero", d.NextOpen)
			case c.next != "" && !d.NextOpen.Equal(ts(t, c.next)):
				t.Errorf("NextOpen = %v, want %s", d.NextOpen, c.next)
			}
			// NextOpen must itself be open, or it is not an answer.
			if !d.NextOpen.IsZero() && !s.At(d.NextOpen).Open {
				t.Errorf("NextOpen %v is not open", d.NextOpen)
			}
			// ...and the earliest one: everything in [t, NextOpen) is closed,
			// in particular the instant just before it.
			if !d.NextOpen.IsZero() && s.At(d.NextOpen.Add(-time.Nanosecond)).Open {
				t.Errorf("just before NextOpen %v is already open", d.NextOpen)
			}
		})
	}
}

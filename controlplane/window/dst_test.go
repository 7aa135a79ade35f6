package window

import (
	"testing"
	"time"
)

// Changes covered (all on Sundays):
//   Europe/Berlin     2026-03-29 02:00 CET  -> 03:00 CEST (01:00Z)
//                     2026-10-25 03:00 CEST -> 02:00 CET  (01:00Z)
//   America/New_York  2026-03-08 02:00 EST  -> 03:00 EDT  (07:00Z)
//                     2026-11-01 02:00 EDT  -> 01:00 EST  (06:00Z)

// TestDSTIntervals pins the real [start, end) of one window on one day by
// probing just inside and just outside both ends.
func TestDSTIntervals(t *testing.T) {
	for _, c := range []struct {
		name       string
		zone       string
		day        string // the single listed weekday
		from, to   string
		start, end string // expected instants
		dur        time.Duration
	}{
		// A 01:00-03:00 window spans the skipped or repeated hour.
		{"berlin spring 01-03 lasts 1h", "Europe/Berlin", "sun", "01:00", "03:00", "2026-03-29T00:00Z", "2026-03-29T01:00Z", time.Hour},
		{"berlin fall 01-03 lasts 3h", "Europe/Berlin", "sun", "01:00", "03:00", "2026-10-24T23:00Z", "2026-10-25T02:00Z", 3 * time.Hour},
		{"new york spring 01-03 lasts 1h", "America/New_York", "sun", "01:00", "03:00", "2026-03-08T06:00Z", "2026-03-08T07:00Z", time.Hour},
		{"new york fall 01-03 lasts 3h", "America/New_York", "sun", "01:00", "03:00", "2026-11-01T05:00Z", "2026-11-01T08:00Z", 3 * time.Hour},
		// An overnight window from Saturday across the change.
		{"berlin spring overnight 22-06 lasts 7h", "Europe/Berlin", "sat", "22:00", "06:00", "2026-03-28T21:00Z", "2026-03-29T04:00Z", 7 * time.Hour},
		{"berlin fall overnight 22-06 lasts 9h", "Europe/Berlin", "sat", "22:00", "06:00", "2026-10-24T20:00Z", "2026-10-25T05:00Z", 9 * time.Hour},

		// Wall times inside the spring-forward gap resolve as time.Date does:
		// Berlin moves 02:30 forward to 03:30 CEST, New York moves it back to
		// 01:30 EST.
		{"berlin gap start 02:30-04:00", "Europe/Berlin", "sun", "02:30", "04:00", "2026-03-29T01:30Z", "2026-03-29T02:00Z", 30 * time.Minute},
		{"new york gap start 02:30-04:00", "America/New_York", "sun", "02:30", "04:00", "2026-03-08T06:30Z", "2026-03-08T08:00Z", 90 * time.Minute},
		{"new york gap 02:00-03:00 still 1h", "America/New_York", "sun", "02:00", "03:00", "2026-03-08T06:00Z", "2026-03-08T07:00Z", time.Hour},
		// Wall times inside the fall-back overlap: Berlin takes the second
		// 02:30 (CET), New York the first 01:30 (EDT).
		{"berlin overlap 02:30-03:00", "Europe/Berlin", "sun", "02:30", "03:00", "2026-10-25T01:30Z", "2026-10-25T02:00Z", 30 * time.Minute},
		{"new york overlap 01:30-02:00", "America/New_York", "sun", "01:30", "02:00", "2026-11-01T05:30Z", "2026-11-01T07:00Z", 90 * time.Minute},
		// Chile springs forward at midnight: a Sunday 00:00 window opens at
		// 23:00 on Saturday's wall clock, so the day after t must be checked too.
		{"santiago midnight gap", "America/Santiago", "sun", "00:00", "02:00", "2019-09-08T03:00Z", "2019-09-08T05:00Z", 2 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, Spec{TimeZone: c.zone, Allow: []Allow{{Days: []string{c.day}, From: c.from, To: c.to}}})
			start, end := ts(t, c.start), ts(t, c.end)
			if got := end.Sub(start); got != c.dur {
				t.Fatalf("test table: end-start = %v, want %v", got, c.dur)
			}
			ns := time.Nanosecond
			for _, p := range []struct {
				at   time.Time
				open bool
			}{{start.Add(-ns), false}, {start, true}, {start.Add(c.dur / 2), true}, {end.Add(-ns), true}, {end, false}} {
				if got := s.At(p.at).Open; got != p.open {
					t.Errorf("At(%s).Open = %v, want %v", p.at.In(s.loc).Format(time.RFC3339Nano), got, p.open)
				}
			}
			// The window is found from the day before, too.
			if d := s.At(start.Add(-20 * time.Hour)); !d.NextOpen.Equal(start) {
				t.Errorf("NextOpen = %v, want %v", d.NextOpen, start)
			}
		})
	}
}

// A window lying wholly in the gap does not exist that day.
func TestDSTWindowInsideGap(t *testing.T) {
	s := mustParse(t, Spec{TimeZone: "Europe/Berlin", Allow: []Allow{{Days: []string{"sun"}, From: "02:00", To: "03:00"}}})
	runAt(t, s, []atCase{
		{name: "gap day", at: "2026-03-29T00:00+01:00", next: "2026-04-05T02:00+02:00"},
		{name: "at the jump", at: "2026-03-29T03:00+02:00", next: "2026-04-05T02:00+02:00"},
		{name: "week before exists", at: "2026-03-22T02:00+01:00", open: true},
	})
}

func TestDSTOfficeHours(t *testing.T) {
	weekdays := []string{"mon", "tue", "wed", "thu", "fri"}
	t.Run("berlin", func(t *testing.T) {
		s := mustParse(t, Spec{TimeZone: "Europe/Berlin", Allow: []Allow{{Days: weekdays, From: "09:00", To: "17:00"}}})
		runAt(t, s, []atCase{
			// 09:00 local is 08:00Z in winter and 07:00Z in summer.
			{name: "friday before spring, winter", at: "2026-03-27T08:00Z", open: true},
			{name: "monday after spring opens 07:00Z", at: "2026-03-30T07:00Z", open: true},
			{name: "monday after spring 06:59Z closed", at: "2026-03-30T06:59Z", next: "2026-03-30T07:00Z"},
			{name: "monday after fall opens 08:00Z", at: "2026-10-26T08:00Z", open: true},
			{name: "monday after fall 07:30Z closed", at: "2026-10-26T07:30Z", next: "2026-10-26T08:00Z"},
			// NextOpen over the weekend of the change lands on 09:00 local.
			{name: "next open across spring", at: "2026-03-27T18:00+01:00", next: "2026-03-30T09:00+02:00"},
			{name: "next open across fall", at: "2026-10-23T18:00+02:00", next: "2026-10-26T09:00+01:00"},
			{name: "next open from the change itself", at: "2026-10-25T02:30+01:00", next: "2026-10-26T08:00Z"},
		})
	})
	t.Run("new york", func(t *testing.T) {
		s := mustParse(t, Spec{TimeZone: "America/New_York", Allow: []Allow{{Days: weekdays, From: "09:00", To: "17:00"}}})
		runAt(t, s, []atCase{
			{name: "monday after spring opens 13:00Z", at: "2026-03-09T13:00Z", open: true},
			{name: "monday after fall opens 14:00Z", at: "2026-11-02T14:00Z", open: true},
			{name: "monday after fall 13:30Z closed", at: "2026-11-02T13:30Z", next: "2026-11-02T14:00Z"},
			{name: "next open across spring", at: "2026-03-06T18:00-05:00", next: "2026-03-09T09:00-04:00"},
			{name: "next open across fall", at: "2026-10-30T18:00-04:00", next: "2026-11-02T09:00-05:00"},
		})
	})
}

// Freezes given in wall time end at local midnight even when the day they
// span is 23 or 25 hours long.
func TestDSTFreezes(t *testing.T) {
	for _, c := range []struct {
		name     string
		zone     string
		from, to string // wall times
		end      string // the instant the freeze lifts
		reason   string
	}{
		{"berlin spring midnight", "Europe/Berlin", "2026-03-28", "2026-03-30", "2026-03-29T22:00Z", "until 2026-03-30T00:00+02:00"},
		{"berlin fall midnight", "Europe/Berlin", "2026-10-24", "2026-10-26", "2026-10-25T23:00Z", "until 2026-10-26T00:00+01:00"},
		{"new york spring midnight", "America/New_York", "2026-03-07", "2026-03-09", "2026-03-09T04:00Z", "until 2026-03-09T00:00-04:00"},
		{"new york fall midnight", "America/New_York", "2026-10-31", "2026-11-02", "2026-11-02T05:00Z", "until 2026-11-02T00:00-05:00"},
		// A freeze end in the gap resolves like time.Date: 02:30 -> 03:30 CEST.
		{"berlin end in gap", "Europe/Berlin", "2026-03-29T00:00", "2026-03-29T02:30", "2026-03-29T01:30Z", "until 2026-03-29T03:30+02:00"},
		// A freeze end in the overlap: Berlin takes the later 02:30 (CET).
		{"berlin end in overlap", "Europe/Berlin", "2026-10-25T00:00", "2026-10-25T02:30", "2026-10-25T01:30Z", "until 2026-10-25T02:30+01:00"},
		// New York takes the earlier 01:30 (EDT).
		{"new york end in overlap", "America/New_York", "2026-11-01T00:00", "2026-11-01T01:30", "2026-11-01T05:30Z", "until 2026-11-01T01:30-04:00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, Spec{TimeZone: c.zone, Freeze: []Freeze{{From: c.from, To: c.to, Reason: "dst"}}})
			end := ts(t, c.end)
			runAt(t, s, []atCase{
				{name: "just before", at: end.Add(-time.Nanosecond).Format(time.RFC3339Nano), reason: `freeze "dst" ` + c.reason, next: c.end},
				{name: "at end", at: c.end, open: true},
			})
		})
	}
}

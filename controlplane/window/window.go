// Package window decides whether a blue/green switch may start at a given
// instant: recurring deploy windows ("Mon-Fri 09:00-17:00") minus one-off
// freezes ("year-end"), all in one IANA time zone.
//
// Wall times are local to the schedule's zone, so a 09:00 window opens at
// 09:00 local on both sides of a DST change (07:00Z in Berlin summer, 08:00Z
// in winter). A wall time that does not exist (inside a spring-forward gap)
// or exists twice (inside a fall-back overlap) is resolved exactly as
// time.Date resolves it, because that is what every other Go component that
// reads the same config will compute. Go does not promise a direction: in
// practice Europe/Berlin moves a gap time forward (02:30 -> 03:30 CEST) and
// picks the later instant of an overlap (02:30 CET), while America/New_York
// moves a gap time back (02:30 -> 01:30 EST) and picks the earlier instant of
// an overlap (01:30 EDT). The tests pin these results.
package window

import (
	"fmt"
	"sort"
	"strings"
	"time"

	// Embed the zone database so schedules work in minimal containers
	// without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Spec is the user's configuration (already decoded from YAML by another package).
type Spec struct {
	TimeZone string  // IANA name, e.g. "Europe/Berlin"; "" means UTC
	Allow    []Allow // empty: always allowed (freezes still apply)
	Freeze   []Freeze
}

// Allow is one recurring deploy window.
type Allow struct {
	Days []string // "mon".."sun" (case-insensitive, also full names "monday"); empty = every day
	From string   // "HH:MM" local wall time
	To   string   // "HH:MM"; To <= From means the window runs past midnight into the next day (the day listed is the day it opens); "24:00" allowed as To
}

// Freeze is a one-off period during which no switch may start.
type Freeze struct {
	From   string // local wall time "2006-01-02T15:04" or "2006-01-02" (midnight) in TimeZone, or RFC3339 with an explicit offset
	To     string // same formats; exclusive; must be after From
	Reason string
}

// Decision is whether a switch may start at an instant.
type Decision struct {
	Open     bool
	Reason   string    // why closed: "outside the deploy windows (Mon-Fri 09:00-17:00 Europe/Berlin)" or "freeze \"year-end\" until 2027-01-04T00:00+01:00"; "" when open
	NextOpen time.Time // when closed: the earliest instant >= t at which Open is true; zero if none within 400 days
}

// horizon bounds the NextOpen search so a schedule that never opens again
// (e.g. a freeze lasting years) costs a bounded amount of work.
const horizon = 400 * 24 * time.Hour

// allDays is the weekday mask for "every day" (bit i = time.Weekday(i)).
const allDays = 1<<7 - 1

// Schedule is a parsed, validated Spec. It is immutable and safe for
// concurrent use. A nil *Schedule is always open.
type Schedule struct {
	loc     *time.Location
	allow   []allow
	freezes []freeze // sorted by start, then end
	blocks  []span   // union of freezes: sorted, disjoint, non-adjacent
	allowS  string   // "Mon-Fri 09:00-17:00 Europe/Berlin", for String
	outside string   // Reason when outside every allow window, built once
}

type allow struct {
	days     uint8 // weekday mask of the day the window opens
	from, to int   // minutes after local midnight; to may be 1440
	desc     string
}

type freeze struct {
	span
	reason string
	why    string // Decision.Reason while this freeze holds, built once
}

type span struct{ start, end time.Time }

// interval returns the window opening on local calendar day (y, m, d).
// d may be out of range; time.Date normalises it. An interval whose ends
// were normalised past each other (a window inside a DST gap) is empty.
func (a *allow) interval(y int, m time.Month, d int, loc *time.Location) (start, end time.Time) {
	start = time.Date(y, m, d, a.from/60, a.from%60, 0, 0, loc)
	if a.to <= a.from {
		d++ // overnight: closes on the next calendar day
	}
	end = time.Date(y, m, d, a.to/60, a.to%60, 0, 0, loc)
	return start, end
}

// At decides for instant t (any location; compared in the schedule's zone).
func (s *Schedule) At(t time.Time) Decision {
	if s == nil {
		return Decision{Open: true}
	}
	t = t.In(s.loc) // also drops the monotonic reading
	if f := s.freezeAt(t); f != nil {
		return Decision{Reason: f.why, NextOpen: s.next(t)}
	}
	if len(s.allow) > 0 && !s.inAllow(t) {
		return Decision{Reason: s.outside, NextOpen: s.next(t)}
	}
	return Decision{Open: true}
}

// Always reports whether the schedule never closes (no allow windows, no freezes).
func (s *Schedule) Always() bool {
	return s == nil || (len(s.allow) == 0 && len(s.freezes) == 0)
}

// String describes the schedule in one line for status output.
func (s *Schedule) String() string {
	if s.Always() {
		return "always open"
	}
	parts := make([]string, 0, 1+len(s.freezes))
	if len(s.allow) > 0 {
		parts = append(parts, s.allowS)
	} else {
		parts = append(parts, "any time")
	}
	for i := range s.freezes {
		f := &s.freezes[i]
		p := "freeze"
		if f.reason != "" {
			p += " " + fmt.Sprintf("%q", f.reason)
		}
		parts = append(parts, p+" "+stamp(f.start)+" to "+stamp(f.end))
	}
	return strings.Join(parts, "; ")
}

// freezeAt returns the freeze covering t that lasts longest, so the reason
// names the freeze that holds the door shut the longest; nil if none.
func (s *Schedule) freezeAt(t time.Time) *freeze {
	if s.blockAt(t) < 0 {
		return nil // fast path: one binary search
	}
	var best *freeze
	for i := range s.freezes {
		f := &s.freezes[i]
		if f.start.After(t) {
			break // sorted by start
		}
		if t.Before(f.end) && (best == nil || f.end.After(best.end)) {
			best = f
		}
	}
	return best
}

// blockAt returns the index of the merged freeze block containing t, or -1.
func (s *Schedule) blockAt(t time.Time) int {
	// First block ending after t; t is inside it iff it has started.
	i := sort.Search(len(s.blocks), func(i int) bool { return s.blocks[i].end.After(t) })
	if i < len(s.blocks) && !t.Before(s.blocks[i].start) {
		return i
	}
	return -1
}

// inAllow reports whether t (already in s.loc) is inside an allow interval.
func (s *Schedule) inAllow(t time.Time) bool {
	y, m, d := t.Date()
	wd := int(t.Weekday())
	// Normally only today's window and yesterday's overnight window can
	// cover t, but time.Date may shift a gap wall time by the gap length,
	// so also look one day further each way (zones have skipped whole days,
	// e.g. Pacific/Apia on 2011-12-30).
	for k := -2; k <= 1; k++ {
		bit := uint8(1) << ((wd + k + 7) % 7)
		for i := range s.allow {
			a := &s.allow[i]
			if a.days&bit == 0 {
				continue
			}
			start, end := a.interval(y, m, d+k, s.loc)
			if !t.Before(start) && t.Before(end) {
				return true
			}
		}
	}
	return false
}

// nextAllowStart returns the earliest start of a non-empty allow interval
// after t, looking a little past the horizon; ok is false if there is none.
func (s *Schedule) nextAllowStart(t time.Time) (best time.Time, ok bool) {
	y, m, d := t.Date()
	wd := int(t.Weekday())
	found := 0
	for k := -2; k <= int(horizon/(24*time.Hour))+2; k++ {
		// Starts from consecutive days are ordered unless a DST shift moved
		// one; two more days after the first hit cover any such shift.
		if ok && k > found+2 {
			break
		}
		bit := uint8(1) << ((wd + k%7 + 7) % 7)
		for i := range s.allow {
			a := &s.allow[i]
			if a.days&bit == 0 {
				continue
			}
			start, end := a.interval(y, m, d+k, s.loc)
			if start.After(t) && start.Before(end) && (!ok || start.Before(best)) {
				best, ok, found = start, true, k
			}
		}
	}
	return best, ok
}

// next returns the earliest open instant >= t, or zero beyond the horizon.
// Each step jumps to the only instants where "closed" can turn into "open":
// the end of the freeze block covering t, or the next allow-interval start.
// Every jump moves strictly forward, so the loop ends.
func (s *Schedule) next(t time.Time) time.Time {
	limit := t.Add(horizon)
	for !t.After(limit) {
		if i := s.blockAt(t); i >= 0 {
			t = s.blocks[i].end // blocks are non-adjacent: t is now outside all freezes
			continue
		}
		if len(s.allow) > 0 && !s.inAllow(t) {
			start, ok := s.nextAllowStart(t)
			if !ok {
				return time.Time{}
			}
			t = start
			continue
		}
		return t
	}
	return time.Time{}
}

func (f *freeze) describe() string {
	if f.reason == "" {
		return "freeze until " + stamp(f.end)
	}
	return fmt.Sprintf("freeze %q until %s", f.reason, stamp(f.end))
}

// stamp formats t in its own location to the minute, like the config's own
// format, keeping seconds only when they matter.
func stamp(t time.Time) string {
	if t.Second() != 0 || t.Nanosecond() != 0 {
		return t.Format("2006-01-02T15:04:05Z07:00")
	}
	return t.Format("2006-01-02T15:04Z07:00")
}

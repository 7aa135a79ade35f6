package window

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// FieldError is one problem with one field, e.g. Path "allow[1].from".
// Paths are relative to the Spec so a caller can prefix its own location.
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// Errors lists every problem Parse found, one per field, so a user fixes
// the whole spec in one pass.
type Errors []FieldError

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es *Errors) add(path, format string, args ...any) {
	*es = append(*es, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// Parse validates a Spec. On failure the error is an Errors value naming
// every bad field, e.g. `allow[1].from: "25:00" is not HH:MM`.
func Parse(s Spec) (*Schedule, error) {
	var es Errors
	loc := time.UTC
	switch tz := strings.TrimSpace(s.TimeZone); tz {
	case "", "UTC":
	case "Local":
		// The machine's zone differs between replicas and laptops; a deploy
		// window must mean the same instant everywhere.
		es.add("time_zone", `"Local" is not allowed; name an IANA time zone such as "Europe/Berlin"`)
	default:
		l, err := time.LoadLocation(tz)
		if err != nil {
			es.add("time_zone", "unknown time zone %q", s.TimeZone)
		} else {
			loc = l
		}
	}

	sch := &Schedule{loc: loc}
	for i, a := range s.Allow {
		at := fmt.Sprintf("allow[%d]", i)
		w := allow{days: allDays}
		if len(a.Days) > 0 {
			w.days = 0
			for j, d := range a.Days {
				wd, ok := dayNames[strings.ToLower(strings.TrimSpace(d))]
				if !ok {
					es.add(fmt.Sprintf("%s.days[%d]", at, j), "%q is not a day", d)
					continue
				}
				w.days |= 1 << wd
			}
		}
		var ok1, ok2 bool
		w.from, ok1 = clock(&es, at+".from", a.From, false)
		w.to, ok2 = clock(&es, at+".to", a.To, true)
		if ok1 && ok2 {
			w.desc = dayRanges(w.days) + " " + hhmm(w.from) + "-" + hhmm(w.to)
		}
		sch.allow = append(sch.allow, w)
	}

	for i, f := range s.Freeze {
		at := fmt.Sprintf("freeze[%d]", i)
		start, ok1 := instant(&es, at+".from", f.From, loc)
		end, ok2 := instant(&es, at+".to", f.To, loc)
		if ok1 && ok2 && !end.After(start) {
			es.add(at, "to is not after from")
			continue
		}
		sch.freezes = append(sch.freezes, freeze{span: span{start, end}, reason: f.Reason})
	}

	if len(es) > 0 {
		return nil, es
	}

	descs := make([]string, len(sch.allow))
	for i := range sch.allow {
		descs[i] = sch.allow[i].desc
	}
	sch.allowS = strings.Join(descs, ", ") + " " + loc.String()
	// Reasons are fixed per schedule; building them here keeps At free of
	// allocations.
	sch.outside = "outside the deploy windows (" + sch.allowS + ")"
	for i := range sch.freezes {
		sch.freezes[i].why = sch.freezes[i].describe()
	}

	sort.SliceStable(sch.freezes, func(i, j int) bool {
		a, b := sch.freezes[i], sch.freezes[j]
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		return a.end.Before(b.end)
	})
	// Merge overlapping and touching freezes so "in a freeze?" is one binary
	// search and leaving a block lands outside every freeze.
	for _, f := range sch.freezes {
		n := len(sch.blocks)
		if n > 0 && !f.start.After(sch.blocks[n-1].end) {
			if f.end.After(sch.blocks[n-1].end) {
				sch.blocks[n-1].end = f.end
			}
			continue
		}
		sch.blocks = append(sch.blocks, f.span)
	}
	return sch, nil
}

// clock parses "HH:MM" into minutes after midnight. "24:00" is accepted only
// as an end time, meaning the following midnight.
func clock(es *Errors, path, v string, isEnd bool) (int, bool) {
	if v == "" {
		es.add(path, "missing (want HH:MM)")
		return 0, false
	}
	bad := len(v) != 5 || v[2] != ':' || !digit(v[0]) || !digit(v[1]) || !digit(v[3]) || !digit(v[4])
	if !bad {
		h := int(v[0]-'0')*10 + int(v[1]-'0')
		m := int(v[3]-'0')*10 + int(v[4]-'0')
		switch {
		case h < 24 && m < 60:
			return h*60 + m, true
		case h == 24 && m == 0 && isEnd:
			return 24 * 60, true
		case h == 24 && m == 0:
			es.add(path, "%q is not HH:MM (24:00 is only allowed in to)", v)
			return 0, false
		}
	}
	es.add(path, "%q is not HH:MM", v)
	return 0, false
}

func digit(c byte) bool { return '0' <= c && c <= '9' }

// Layouts with an explicit offset name an instant; the others are wall times
// in the schedule's zone.
var (
	offsetLayouts = []string{time.RFC3339, "2006-01-02T15:04Z07:00"}
	wallLayouts   = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}
)

// instant parses a freeze bound. Wall times go through time.Date in loc so a
// time inside a DST gap or overlap resolves the same way allow windows do.
func instant(es *Errors, path, v string, loc *time.Location) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		es.add(path, "missing (want 2006-01-02, 2006-01-02T15:04 or RFC3339)")
		return time.Time{}, false
	}
	for _, l := range offsetLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.In(loc), true
		}
	}
	for _, l := range wallLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc), true
		}
	}
	es.add(path, "%q is not a time (want 2006-01-02, 2006-01-02T15:04 or RFC3339)", v)
	return time.Time{}, false
}

func hhmm(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// dayRanges renders a weekday mask Monday-first, collapsing runs:
// "Mon-Fri", "Mon,Wed,Sat-Sun", "daily".
func dayRanges(mask uint8) string {
	if mask == allDays {
		return "daily"
	}
	order := [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	var parts []string
	for i := 0; i < 7; {
		if mask&(1<<order[i]) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < 7 && mask&(1<<order[j+1]) != 0 {
			j++
		}
		p := order[i].String()[:3]
		if j > i {
			p += "-" + order[j].String()[:3]
		}
		parts = append(parts, p)
		i = j + 1
	}
	return strings.Join(parts, ",")
}

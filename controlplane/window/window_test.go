package window

import (
	"testing"
	"time"
)

// officeHours is Mon-Fri 09:00-17:00 in Berlin. June 2026 is CEST (+02:00);
// 2026-06-01 is a Monday.
var officeHours = Spec{
	TimeZone: "Europe/Berlin",
	Allow:    []Allow{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "17:00"}},
}

func TestAtOfficeHours(t *testing.T) {
	s := mustParse(t, officeHours)
	const outside = "outside the deploy windows (Mon-Fri 09:00-17:00 Europe/Berlin)"
	runAt(t, s, []atCase{
		{name: "monday before opening", at: "2026-06-01T08:59+02:00", reason: outside, next: "2026-06-01T09:00+02:00"},
		{name: "monday midnight", at: "2026-06-01T00:00+02:00", next: "2026-06-01T09:00+02:00"},
		{name: "opening minute is open", at: "2026-06-01T09:00+02:00", open: true},
		{name: "wednesday noon", at: "2026-06-03T12:00+02:00", open: true},
		{name: "last nanosecond open", at: "2026-06-05T16:59:59.999999999+02:00", open: true},
		{name: "closing minute is closed", at: "2026-06-05T17:00+02:00", reason: outside, next: "2026-06-08T09:00+02:00"},
		{name: "friday evening to monday", at: "2026-06-05T18:00+02:00", reason: outside, next: "2026-06-08T09:00+02:00"},
		{name: "tuesday evening to wednesday", at: "2026-06-02T17:30+02:00", next: "2026-06-03T09:00+02:00"},
		{name: "saturday", at: "2026-06-06T12:00+02:00", next: "2026-06-08T09:00+02:00"},
		{name: "sunday late", at: "2026-06-07T23:59+02:00", next: "2026-06-08T09:00+02:00"},
	})
}

// The instant decides, not the wall clock of whatever location t carries.
func TestAtOtherLocation(t *testing.T) {
	s := mustParse(t, officeHours)
	runAt(t, s, []atCase{
		{name: "UTC 07:00 is Berlin 09:00", at: "2026-06-01T07:00Z", open: true},
		{name: "UTC 06:59 is Berlin 08:59", at: "2026-06-01T06:59Z", next: "2026-06-01T07:00Z"},
		{name: "UTC 15:00 is Berlin 17:00", at: "2026-06-01T15:00Z", next: "2026-06-02T07:00Z"},
		{name: "UTC friday 22:30 is Berlin saturday", at: "2026-06-05T22:30Z", next: "2026-06-08T07:00Z"},
		{name: "New York monday 03:00 is Berlin 09:00", at: "2026-06-01T03:00-04:00", open: true},
		{name: "Tokyo monday 09:00 is Berlin 02:00", at: "2026-06-01T09:00+09:00", next: "2026-06-01T07:00Z"},
	})

	ny := mustLoc(t, "America/New_York")
	d := s.At(time.Date(2026, 6, 5, 12, 0, 0, 0, ny)) // Berlin 18:00 Friday
	if d.Open {
		t.Fatal("Friday 12:00 New York (18:00 Berlin) should be closed")
	}
	if got := d.NextOpen.Location().String(); got != "Europe/Berlin" {
		t.Errorf("NextOpen location = %s, want the schedule's zone", got)
	}
	if got := d.NextOpen.Format("Mon 15:04"); got != "Mon 09:00" {
		t.Errorf("NextOpen = %s, want Mon 09:00 local", got)
	}
}

func TestAtOvernight(t *testing.T) {
	s := mustParse(t, Spec{
		TimeZone: "Europe/Berlin",
		Allow:    []Allow{{Days: []string{"Monday"}, From: "22:00", To: "06:00"}},
	})
	runAt(t, s, []atCase{
		{name: "monday before", at: "2026-06-01T21:59+02:00", reason: "(Mon 22:00-06:00 Europe/Berlin)", next: "2026-06-01T22:00+02:00"},
		{name: "monday opening", at: "2026-06-01T22:00+02:00", open: true},
		{name: "past midnight into tuesday", at: "2026-06-02T02:00+02:00", open: true},
		{name: "tuesday 05:59", at: "2026-06-02T05:59+02:00", open: true},
		{name: "tuesday 06:00 closed", at: "2026-06-02T06:00+02:00", next: "2026-06-08T22:00+02:00"},
		{name: "tuesday night not listed", at: "2026-06-02T23:00+02:00", next: "2026-06-08T22:00+02:00"},
		// Sunday is not listed, so nothing spills into Monday morning.
		{name: "monday early morning", at: "2026-06-01T02:00+02:00", next: "2026-06-01T22:00+02:00"},
	})
}

func TestAtEdgeTimes(t *testing.T) {
	t.Run("to 24:00", func(t *testing.T) {
		s := mustParse(t, Spec{Allow: []Allow{{Days: []string{"sat"}, From: "18:00", To: "24:00"}}})
		runAt(t, s, []atCase{
			{name: "saturday 23:59", at: "2026-06-06T23:59Z", open: true},
			{name: "sunday midnight", at: "2026-06-07T00:00Z", reason: "(Sat 18:00-24:00 UTC)", next: "2026-06-13T18:00Z"},
		})
	})
	t.Run("from equals to is 24 hours", func(t *testing.T) {
		s := mustParse(t, Spec{Allow: []Allow{{Days: []string{"mon"}, From: "09:00", To: "09:00"}}})
		runAt(t, s, []atCase{
			{name: "monday 09:00", at: "2026-06-01T09:00Z", open: true},
			{name: "tuesday 08:59", at: "2026-06-02T08:59Z", open: true},
			{name: "tuesday 09:00", at: "2026-06-02T09:00Z", next: "2026-06-08T09:00Z"},
		})
	})
	t.Run("several windows", func(t *testing.T) {
		s := mustParse(t, Spec{Allow: []Allow{
			{Days: []string{"mon", "wed"}, From: "10:00", To: "11:00"},
			{Days: []string{"SAT", "sun"}, From: "08:00", To: "09:00"},
			{From: "03:00", To: "03:30"},
		}})
		runAt(t, s, []atCase{
			{name: "daily window", at: "2026-06-02T03:10Z", open: true},
			{name: "tuesday after daily", at: "2026-06-02T03:30Z", reason: "(Mon,Wed 10:00-11:00, Sat-Sun 08:00-09:00, daily 03:00-03:30 UTC)", next: "2026-06-03T03:00Z"},
			{name: "wednesday between", at: "2026-06-03T04:00Z", next: "2026-06-03T10:00Z"},
			{name: "saturday after daily", at: "2026-06-06T03:30Z", next: "2026-06-06T08:00Z"},
		})
	})
}

func TestAtFreezes(t *testing.T) {
	spec := officeHours
	spec.Freeze = []Freeze{
		// Wednesday noon to Saturday morning, local wall times.
		{From: "2026-06-03T12:00", To: "2026-06-06T10:00", Reason: "release"},
		// 12:00-13:00 Berlin given as UTC instants.
		{From: "2026-06-09T10:00:00Z", To: "2026-06-09T11:00:00Z", Reason: "utc"},
		// 14:00-15:00 Berlin given with another offset, minutes precision.
		{From: "2026-06-09T17:30+05:30", To: "2026-06-09T18:30+05:30", Reason: "india"},
		// Overlapping chain on Wednesday 2026-06-10: a [10,12) b [11,14) c [14,15).
		{From: "2026-06-10T10:00", To: "2026-06-10T12:00", Reason: "a"},
		{From: "2026-06-10T11:00", To: "2026-06-10T14:00", Reason: "b"},
		{From: "2026-06-10T14:00", To: "2026-06-10T15:00", Reason: "c"},
		// Nested on Thursday 2026-06-11: inner sits inside outer.
		{From: "2026-06-11T10:00", To: "2026-06-11T16:00", Reason: "outer"},
		{From: "2026-06-11T11:00", To: "2026-06-11T12:00", Reason: "inner"},
		// Whole-day freeze on Friday 2026-06-12, date-only form, no reason.
		{From: "2026-06-12", To: "2026-06-13"},
	}
	s := mustParse(t, spec)
	runAt(t, s, []atCase{
		{name: "before the freeze", at: "2026-06-03T11:59+02:00", open: true},
		{name: "freeze closes an open window", at: "2026-06-03T12:00+02:00",
			reason: `freeze "release" until 2026-06-06T10:00+02:00`, next: "2026-06-08T09:00+02:00"},
		{name: "freeze ending saturday skips to monday", at: "2026-06-05T10:00+02:00", next: "2026-06-08T09:00+02:00"},
		{name: "freeze outside window reports freeze", at: "2026-06-04T20:00+02:00", reason: `freeze "release"`, next: "2026-06-08T09:00+02:00"},
		{name: "after freeze, weekend", at: "2026-06-06T10:00+02:00", reason: "outside the deploy windows", next: "2026-06-08T09:00+02:00"},

		{name: "rfc3339 Z freeze", at: "2026-06-09T12:30+02:00", reason: `freeze "utc" until 2026-06-09T13:00+02:00`, next: "2026-06-09T13:00+02:00"},
		{name: "rfc3339 Z freeze start", at: "2026-06-09T10:00Z", reason: `"utc"`, next: "2026-06-09T11:00Z"},
		{name: "rfc3339 Z freeze end", at: "2026-06-09T11:00Z", open: true},
		{name: "offset freeze", at: "2026-06-09T14:00+02:00", reason: `freeze "india" until 2026-06-09T15:00+02:00`, next: "2026-06-09T15:00+02:00"},

		{name: "overlap first only", at: "2026-06-10T10:30+02:00", reason: `freeze "a" until 2026-06-10T12:00+02:00`, next: "2026-06-10T15:00+02:00"},
		{name: "overlap both names the longer", at: "2026-06-10T11:30+02:00", reason: `freeze "b" until 2026-06-10T14:00+02:00`, next: "2026-06-10T15:00+02:00"},
		{name: "overlap second only", at: "2026-06-10T12:30+02:00", reason: `"b"`, next: "2026-06-10T15:00+02:00"},
		{name: "adjacent freeze continues", at: "2026-06-10T14:00+02:00", reason: `freeze "c" until 2026-06-10T15:00+02:00`, next: "2026-06-10T15:00+02:00"},
		{name: "after the chain", at: "2026-06-10T15:00+02:00", open: true},
		{name: "nested names outer", at: "2026-06-11T11:30+02:00", reason: `freeze "outer" until 2026-06-11T16:00+02:00`, next: "2026-06-11T16:00+02:00"},

		{name: "unnamed whole-day freeze", at: "2026-06-12T09:00+02:00", reason: "freeze until 2026-06-13T00:00+02:00", next: "2026-06-15T09:00+02:00"},
	})
}

func TestAtFreezeOnly(t *testing.T) {
	s := mustParse(t, Spec{Freeze: []Freeze{{From: "2026-12-21", To: "2027-01-04", Reason: "year-end"}}})
	if s.Always() {
		t.Error("a schedule with a freeze is not Always")
	}
	runAt(t, s, []atCase{
		{name: "before", at: "2026-12-20T23:59Z", open: true},
		{name: "inside", at: "2026-12-25T12:00Z", reason: `freeze "year-end" until 2027-01-04T00:00Z`, next: "2027-01-04T00:00Z"},
		{name: "after", at: "2027-01-04T00:00Z", open: true},
	})
}

func TestAtHorizon(t *testing.T) {
	start := ts(t, "2026-01-01T00:00Z")
	at400 := start.Add(400 * 24 * time.Hour)
	for _, c := range []struct {
		name string
		end  time.Time
		want time.Time
	}{
		{"ends exactly at horizon", at400, at400},
		{"ends past horizon", at400.Add(time.Minute), time.Time{}},
		{"ends years later", start.AddDate(5, 0, 0), time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, Spec{Freeze: []Freeze{{From: start.Format(time.RFC3339), To: c.end.Format(time.RFC3339), Reason: "long"}}})
			d := s.At(start)
			if d.Open || !d.NextOpen.Equal(c.want) {
				t.Errorf("At = %+v, want closed with NextOpen %v", d, c.want)
			}
		})
	}

	// Allow windows beyond a long freeze are found too, as long as they fall
	// inside the horizon.
	s := mustParse(t, Spec{
		Allow:  []Allow{{Days: []string{"mon"}, From: "09:00", To: "10:00"}},
		Freeze: []Freeze{{From: "2026-01-01", To: "2026-12-31", Reason: "year"}},
	})
	if d := s.At(start); !d.NextOpen.Equal(ts(t, "2027-01-04T09:00Z")) {
		t.Errorf("NextOpen = %v, want the first Monday after the freeze", d.NextOpen)
	}
}

func TestNilAndEmpty(t *testing.T) {
	var nilSched *Schedule
	empty := mustParse(t, Spec{})
	for name, s := range map[string]*Schedule{"nil": nilSched, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			if d := s.At(time.Now()); !d.Open || d.Reason != "" || !d.NextOpen.IsZero() {
				t.Errorf("At = %+v, want open", d)
			}
			if !s.Always() {
				t.Error("Always = false")
			}
			if got := s.String(); got != "always open" {
				t.Errorf("String = %q", got)
			}
		})
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"office hours", officeHours, "Mon-Fri 09:00-17:00 Europe/Berlin"},
		{"daily overnight utc", Spec{Allow: []Allow{{From: "22:00", To: "06:00"}}}, "daily 22:00-06:00 UTC"},
		{"split days", Spec{TimeZone: "Asia/Tokyo", Allow: []Allow{{Days: []string{"sun", "mon", "wed", "sat"}, From: "00:00", To: "24:00"}}},
			"Mon,Wed,Sat-Sun 00:00-24:00 Asia/Tokyo"},
		{"windows and freezes", Spec{
			TimeZone: "Europe/Berlin",
			Allow:    officeHours.Allow,
			Freeze: []Freeze{
				{From: "2027-02-01", To: "2027-02-02"},
				{From: "2026-12-21", To: "2027-01-04", Reason: "year-end"},
			},
		}, `Mon-Fri 09:00-17:00 Europe/Berlin; freeze "year-end" 2026-12-21T00:00+01:00 to 2027-01-04T00:00+01:00; freeze 2027-02-01T00:00+01:00 to 2027-02-02T00:00+01:00`},
		{"freeze only", Spec{Freeze: []Freeze{{From: "2026-06-01T10:00:30Z", To: "2026-06-01T11:00Z", Reason: "db"}}},
			`any time; freeze "db" 2026-06-01T10:00:30Z to 2026-06-01T11:00Z`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := mustParse(t, c.spec).String(); got != c.want {
				t.Errorf("String =\n %q\nwant\n %q", got, c.want)
			}
		})
	}
}

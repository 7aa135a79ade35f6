package window

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	ok := Allow{From: "09:00", To: "17:00"}
	for _, c := range []struct {
		name string
		spec Spec
		want string // the full message of the (single) error
	}{
		{"unknown zone", Spec{TimeZone: "Mars/Base"}, `time_zone: unknown time zone "Mars/Base"`},
		{"local zone", Spec{TimeZone: "Local"}, `time_zone: "Local" is not allowed; name an IANA time zone such as "Europe/Berlin"`},
		{"hour out of range", Spec{Allow: []Allow{ok, {From: "25:00", To: "26:00"}}}, "allow[1].from: \"25:00\" is not HH:MM\nallow[1].to: \"26:00\" is not HH:MM"},
		{"minute out of range", Spec{Allow: []Allow{{From: "09:00", To: "12:60"}}}, `allow[0].to: "12:60" is not HH:MM`},
		{"single digit hour", Spec{Allow: []Allow{{From: "9:00", To: "17:00"}}}, `allow[0].from: "9:00" is not HH:MM`},
		{"seconds", Spec{Allow: []Allow{{From: "09:00:00", To: "17:00"}}}, `allow[0].from: "09:00:00" is not HH:MM`},
		{"24:00 as from", Spec{Allow: []Allow{{From: "24:00", To: "02:00"}}}, `allow[0].from: "24:00" is not HH:MM (24:00 is only allowed in to)`},
		{"missing from", Spec{Allow: []Allow{{To: "17:00"}}}, `allow[0].from: missing (want HH:MM)`},
		{"bad day", Spec{Allow: []Allow{{Days: []string{"mon", "tue", "funday"}, From: "09:00", To: "17:00"}}}, `allow[0].days[2]: "funday" is not a day`},
		{"empty day", Spec{Allow: []Allow{{Days: []string{""}, From: "09:00", To: "17:00"}}}, `allow[0].days[0]: "" is not a day`},
		{"freeze to equals from", Spec{Freeze: []Freeze{{From: "2026-06-01", To: "2026-06-01T00:00"}}}, `freeze[0]: to is not after from`},
		{"freeze to before from", Spec{Freeze: []Freeze{{From: "2026-06-02", To: "2026-06-01"}}}, `freeze[0]: to is not after from`},
		// The same instant written two ways is still empty.
		{"freeze empty across formats", Spec{TimeZone: "Europe/Berlin", Freeze: []Freeze{{From: "2026-06-01T02:00", To: "2026-06-01T00:00:00Z"}}}, `freeze[0]: to is not after from`},
		{"freeze bad month", Spec{Freeze: []Freeze{{From: "2026-13-01", To: "2027-01-01"}}}, `freeze[0].from: "2026-13-01" is not a time (want 2006-01-02, 2006-01-02T15:04 or RFC3339)`},
		{"freeze bad day", Spec{Freeze: []Freeze{{From: "2026-02-01", To: "2026-02-30"}}}, `freeze[0].to: "2026-02-30" is not a time`},
		{"freeze words", Spec{Freeze: []Freeze{{From: "2026-02-01", To: "2026-02-02"}, {From: "now", To: "tomorrow"}}}, "freeze[1].from: \"now\" is not a time"},
		{"freeze missing to", Spec{Freeze: []Freeze{{From: "2026-02-01"}}}, `freeze[0].to: missing`},
		{"freeze space separator", Spec{Freeze: []Freeze{{From: "2026-02-01 10:00", To: "2026-02-02"}}}, `freeze[0].from: "2026-02-01 10:00" is not a time`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.spec)
			if err == nil {
				t.Fatalf("Parse succeeded (%v), want error %q", s, c.want)
			}
			if s != nil {
				t.Errorf("Parse returned a schedule with an error")
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error =\n %q\nwant prefix\n %q", err, c.want)
			}
		})
	}
}

// Every bad field is reported at once, as FieldErrors a caller can re-root.
func TestParseErrorsAll(t *testing.T) {
	_, err := Parse(Spec{
		TimeZone: "Nowhere/City",
		Allow:    []Allow{{Days: []string{"xx"}, From: "1", To: "2"}},
		Freeze:   []Freeze{{From: "a", To: "b"}, {From: "2026-01-02", To: "2026-01-01"}},
	})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T is not Errors", err)
	}
	var paths []string
	for _, e := range es {
		paths = append(paths, e.Path)
	}
	want := "time_zone allow[0].days[0] allow[0].from allow[0].to freeze[0].from freeze[0].to freeze[1]"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("paths = %s\nwant    %s", got, want)
	}
}

func TestParseAccepts(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
	}{
		{"UTC by name", Spec{TimeZone: "UTC"}},
		{"day spellings", Spec{Allow: []Allow{{Days: []string{"Mon", "TUESDAY", " wed ", "thu", "Friday", "sat", "SUN"}, From: "00:00", To: "24:00"}}}},
		{"overnight", Spec{Allow: []Allow{{From: "23:30", To: "00:30"}}}},
		{"freeze formats", Spec{TimeZone: "Europe/Berlin", Freeze: []Freeze{
			{From: "2026-01-01", To: "2026-01-01T10:00"},
			{From: "2026-01-01T10:00:30", To: "2026-01-01T10:00:00Z"},
			{From: "2026-01-01T12:00+01:00", To: "2026-01-01T12:00:00.5+01:00"},
		}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.spec); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

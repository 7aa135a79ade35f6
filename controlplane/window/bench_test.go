package window

import (
	"testing"
	"time"
)

func BenchmarkAt(b *testing.B) {
	spec := officeHours
	spec.Freeze = []Freeze{
		{From: "2026-06-03T12:00", To: "2026-06-06T10:00", Reason: "release"},
		{From: "2026-12-21", To: "2027-01-04", Reason: "year-end"},
	}
	s := mustParse(b, spec)
	for _, c := range []struct{ name, at string }{
		{"open", "2026-06-01T12:00+02:00"},
		{"closed weekend", "2026-06-06T12:00+02:00"},
		{"closed friday night", "2026-06-12T18:00+02:00"},
		{"freeze", "2026-06-04T12:00+02:00"},
		{"year-end freeze", "2026-12-22T12:00+01:00"},
	} {
		at := ts(b, c.at)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var d Decision
			for b.Loop() {
				d = s.At(at)
			}
			_ = d
		})
	}
	b.Run("nil", func(b *testing.B) {
		var s *Schedule
		at := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			s.At(at)
		}
	})
}

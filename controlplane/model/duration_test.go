package model

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationJSONRoundTrip(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		json string
	}{
		{0, `"0s"`},
		{time.Nanosecond, `"1ns"`},
		{1500 * time.Microsecond, `"1.5ms"`},
		{30 * time.Second, `"30s"`},
		{90 * time.Second, `"1m30s"`},
		{2*time.Hour + 3*time.Second, `"2h0m3s"`},
		{-5 * time.Second, `"-5s"`},
	} {
		b, err := json.Marshal(Duration(c.d))
		if err != nil || string(b) != c.json {
			t.Errorf("marshal %v: %s, %v; want %s", c.d, b, err, c.json)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.D() != c.d {
			t.Errorf("unmarshal %s: %v, %v; want %v", b, back.D(), err, c.d)
		}
	}
}

func TestDurationJSONInStruct(t *testing.T) {
	p := validPlan()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bake":"1m0s"`, `"interval":"10s"`, `"unavailable_budget":"1m0s"`, `"insufficient_budget":"5m0s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Bake != p.Bake || back.Interval != p.Interval || back.UnavailableBudget != p.UnavailableBudget ||
		back.InsufficientBudget != p.InsufficientBudget || back.OnInsufficient != p.OnInsufficient || back.Latency != nil {
		t.Errorf("round trip %+v, want %+v", back, p)
	}
	// The retired window is not written, nor is latency when it is off.
	for _, gone := range []string{`"window"`, `"latency"`} {
		if strings.Contains(string(b), gone) {
			t.Errorf("%s has %s", b, gone)
		}
	}
	// A latency plan round-trips with its durations in human form.
	p.Latency = &LatencyPlan{Quantile: 0.99, Relative: 0.2, Absolute: Duration(50 * time.Millisecond), Unit: Duration(time.Millisecond)}
	if b, err = json.Marshal(p); err != nil {
		t.Fatal(err)
	}
	if want := `"latency":{"quantile":0.99,"relative":0.2,"absolute":"50ms","unit":"1ms"}`; !strings.Contains(string(b), want) {
		t.Errorf("%s lacks %s", b, want)
	}
	back = Plan{}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latency == nil || *back.Latency != *p.Latency {
		t.Errorf("latency round trip %+v, want %+v", back.Latency, p.Latency)
	}
	// Human-written forms are accepted too.
	if err := json.Unmarshal([]byte(`{"bake":"1m30s","interval":"500ms"}`), &back); err != nil || back.Bake.D() != 90*time.Second || back.Interval.D() != 500*time.Millisecond {
		t.Errorf("human forms: %+v, %v", back, err)
	}
}

func TestDurationJSONRejects(t *testing.T) {
	for _, in := range []string{
		`30`,          // a number: nanoseconds or seconds? refused
		`30.5`,        // likewise
		`""`,          // empty
		`"30"`,        // no unit
		`"abc"`,       // not a duration
		`"1 m"`,       // space
		`"1d"`,        // no day unit
		`true`,        // wrong type
		`["30s"]`,     // wrong type
		`{"d":"30s"}`, // wrong type
	} {
		d := Duration(7)
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s accepted as %v", in, d.D())
		} else if d != 7 {
			t.Errorf("%s: rejected but changed the value to %v", in, d.D())
		}
	}
	// In a struct the error surfaces too.
	var p Plan
	if err := json.Unmarshal([]byte(`{"bake":60}`), &p); err == nil {
		t.Errorf("numeric bake accepted as %v", p.Bake.D())
	}
}

package consulkv

import (
	"encoding/json"
	"testing"

	"github.com/bgctl/bg/controlplane/model"
)

func TestDecodeRoundTrip(t *testing.T) {
	in := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 4, Reason: "switch"}
	b, _ := json.Marshal(in)
	out, err := Decode(b)
	if err != nil || out != in {
		t.Fatalf("got %+v, %v", out, err)
	}
}

func TestDecodeRejectsBadData(t *testing.T) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"stable":"red","green_percent":0,"phase":"stable","generation":1}`,
		`{"stable":"blue","green_percent":101,"phase":"stable","generation":1}`,
		`{"stable":"blue","green_percent":0,"phase":"stable","generation":0}`,
		`{"stable":"blue","green_percent":0,"phase":"bogus","generation":1}`,
		`{"stable":"blue","green_percent":0,"phase":"stable","generation":1,"extra":1}`,
		`{"stable":"blue","green_percent":0,"phase":"stable","generation":1}{}`,
		`{"stable":"blue","green_percent":"0","phase":"stable","generation":1}`,
	} {
		if _, err := Decode([]byte(s)); err == nil {
			t.Errorf("Decode(%q) accepted bad data", s)
		}
	}
}

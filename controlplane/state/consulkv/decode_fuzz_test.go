package consulkv

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/bgctl/bg/controlplane/model"
)

// FuzzDecode: the persisted-state decoder never panics, rejects what it
// cannot serve with an error, and whatever it accepts is valid and
// survives a round trip unchanged.
func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 4})
	for _, s := range []string{string(good), `{}`, `null`, `[]`, `{"stable":"blue","green_percent":0,"phase":"stable","generation":1}`,
		`{"stable":"blue","green_percent":0,"phase":"switching","generation":2,"rollout":{}}`, `{"stable":"blue","roll":{"slots":[{}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := Decode(b)
		if err != nil {
			if !reflect.DeepEqual(tr, model.Traffic{}) {
				t.Fatalf("error %v but returned state %+v", err, tr)
			}
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("accepted an invalid state: %v", err)
		}
		again, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(again)
		if err != nil || !reflect.DeepEqual(back, tr) {
			t.Fatalf("round trip changed the state: %v\n%+v\n%+v", err, tr, back)
		}
	})
}

package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

// The bodies the API reads and writes are its wire types (controlplane/api/v1).
type (
	ChangeRequest = apiv1.ChangeRequest
	ErrorBody     = apiv1.ErrorBody
)

// hasPlan is true when any switch-only field is set.
func hasPlan(r ChangeRequest) bool {
	return r.Instant || r.DryRun || r.Steps != nil || r.Bake != "" || r.Interval != "" || r.Window != ""
}

// planOverrides parses the plan fields; the plan itself is validated by the controller.
func planOverrides(r ChangeRequest) (traffic.PlanOverrides, error) {
	o := traffic.PlanOverrides{Steps: r.Steps}
	if r.Window != "" {
		return o, fmt.Errorf("window: retired; a switch counts requests and errors exactly from its own start")
	}
	for _, f := range []struct {
		name, value string
		dst         **time.Duration
	}{{"bake", r.Bake, &o.Bake}, {"interval", r.Interval, &o.Interval}} {
		if f.value == "" {
			continue
		}
		d, err := time.ParseDuration(f.value)
		if err != nil || d < 0 || d > 24*time.Hour {
			return o, fmt.Errorf("%s: %q is not a duration between 0 and 24h", f.name, f.value)
		}
		*f.dst = &d
	}
	return o, nil
}

const maxBody = 64 << 10

// decodeChange parses a request body strictly: unknown fields, bad colours
// and bad durations are errors, never defaults. It checks syntax only: a
// switch without "to" goes to the idle colour and whether a forced command
// gave its reason are the controller's to decide.
func decodeChange(r io.Reader, isSwitch bool) (ChangeRequest, model.Color, time.Duration, error) {
	var req ChangeRequest
	if err := decodeStrict(r, &req); err != nil {
		return req, "", 0, err
	}
	var to model.Color
	switch {
	case isSwitch && req.To != "":
		c, err := model.ParseColor(req.To)
		if err != nil {
			return req, "", 0, fmt.Errorf("to: %w", err)
		}
		to = c
	case isSwitch:
	case req.To != "":
		return req, "", 0, errors.New("to: not allowed except on switch")
	case hasPlan(req):
		return req, "", 0, errors.New("instant, dry_run, steps, bake, interval, window: not allowed except on switch")
	}
	var timeout time.Duration
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > time.Hour {
			return req, "", 0, fmt.Errorf("timeout: %q is not a duration between 0 and 1h", req.Timeout)
		}
		timeout = d
	}
	return req, to, timeout, nil
}

// decodeStrict decodes one JSON object (an empty body leaves v as it is);
// unknown fields and trailing data are errors.
func decodeStrict(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return err
	}
	if len(body) > maxBody {
		return errors.New("request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	// dec.More() misses a stray '}' or ']', so check the raw remainder.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return errors.New("invalid JSON body: trailing data")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: kind})
}

package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

// PreviewRequest is the body of POST /v1/services/{name}/preview.
type PreviewRequest = apiv1.PreviewRequest

func previewHandler(c Controller, defaultTimeout time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decodePreview(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
			return
		}
		if req.Timeout == 0 {
			req.Timeout = defaultTimeout
		}
		req.Service = r.PathValue("name")
		res, err := c.Preview(r.Context(), req)
		writeResult(w, res, err)
	}
}

// decodePreview parses a preview body strictly.
func decodePreview(r io.Reader) (traffic.PreviewRequest, error) {
	var out traffic.PreviewRequest
	var body PreviewRequest
	if err := decodeStrict(r, &body); err != nil {
		return out, err
	}
	if body.To != "" {
		c, err := model.ParseColor(body.To)
		if err != nil {
			return out, fmt.Errorf("to: %w", err)
		}
		out.To = c
	}
	if body.Off && body.To != "" {
		return out, errors.New("off: not with to")
	}
	if body.Timeout != "" {
		d, err := time.ParseDuration(body.Timeout)
		if err != nil || d <= 0 || d > time.Hour {
			return out, fmt.Errorf("timeout: %q is not a duration between 0 and 1h", body.Timeout)
		}
		out.Timeout = d
	}
	out.Off, out.Force, out.Reason = body.Off, body.Force, body.Reason
	return out, nil
}

package admin

import (
	"context"
	"errors"
	"net/http"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/converge"
)

// Converge is what the desired-version routes need (controlplane/converge).
type Converge interface {
	Desire(ctx context.Context, service string, req apiv1.DesireRequest) (apiv1.DesireResult, error)
	Get(service string) (apiv1.Convergence, error)
	// Aborted: an explicit abort clears a pending convergence.
	Aborted(ctx context.Context, service string) error
}

// desiredRoutes serves GET and POST /v1/services/{name}/desired.
func desiredRoutes(mux *router, cv Converge) {
	mux.HandleFunc("GET /v1/services/{name}/desired", func(w http.ResponseWriter, r *http.Request) {
		c, err := cv.Get(r.PathValue("name"))
		if err != nil {
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("POST /v1/services/{name}/desired", func(w http.ResponseWriter, r *http.Request) {
		var req apiv1.DesireRequest
		if err := decodeStrict(r.Body, &req); err != nil {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
			return
		}
		res, err := cv.Desire(r.Context(), r.PathValue("name"), req)
		if err != nil {
			if errors.Is(err, converge.ErrBadDesire) {
				writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
				return
			}
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

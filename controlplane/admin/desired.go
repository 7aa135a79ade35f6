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
	DesireSet(ctx context.Context, req apiv1.DesireSetRequest) (apiv1.DesireSetResult, error)
	Get(service string) (apiv1.Convergence, error)
	// Aborted: an explicit abort clears a pending convergence; Switched:
	// an explicit switch takes precedence over convergence.
	Aborted(ctx context.Context, service string, changed bool) error
	Switched(ctx context.Context, service string) error
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
		writeDesired(w, res, err)
	})
	mux.HandleFunc("POST /v1/desired", func(w http.ResponseWriter, r *http.Request) {
		var req apiv1.DesireSetRequest
		if err := decodeStrict(r.Body, &req); err != nil {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
			return
		}
		res, err := cv.DesireSet(r.Context(), req)
		writeDesired(w, res, err)
	})
}

// writeDesired answers a desire: a refusal as asked is 400.
func writeDesired(w http.ResponseWriter, res any, err error) {
	if err != nil {
		if errors.Is(err, converge.ErrBadDesire) {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
			return
		}
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

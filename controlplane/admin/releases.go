package admin

import (
	"context"
	"errors"
	"net/http"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
)

// Releases is what the API needs from the release executor
// (*releases.Executor).
type Releases interface {
	Start(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error)
	List(ctx context.Context) ([]apiv1.ReleaseStatus, error)
	Get(ctx context.Context, id string) (apiv1.ReleaseStatus, error)
	Abort(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error)
	Pause(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error)
	Resume(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error)
}

// releaseRoutes serves the releases: POST /v1/releases starts one (201),
// GET /v1/releases lists every stored release, newest first, GET
// /v1/releases/{id} reads one, and POST /v1/releases/{id}/abort, pause
// and resume command one. Bodies are decoded strictly.
func releaseRoutes(mux *router, rs Releases) {
	mux.HandleFunc("POST /v1/releases", func(w http.ResponseWriter, r *http.Request) {
		var req apiv1.ReleaseRequest
		if err := decodeStrict(r.Body, &req); err != nil {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
			return
		}
		st, err := rs.Start(r.Context(), req)
		if err != nil {
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, st)
	})
	mux.HandleFunc("GET /v1/releases", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, "no query parameters are taken")
			return
		}
		all, err := rs.List(r.Context())
		if err != nil {
			writeFailure(w, err)
			return
		}
		if all == nil {
			all = []apiv1.ReleaseStatus{} // none is [], not null
		}
		writeJSON(w, http.StatusOK, all)
	})
	mux.HandleFunc("GET /v1/releases/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := rs.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	commands := map[string]func(context.Context, string, apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error){
		"abort": rs.Abort, "pause": rs.Pause, "resume": rs.Resume,
	}
	for name, cmd := range commands {
		mux.HandleFunc("POST /v1/releases/{id}/"+name, func(w http.ResponseWriter, r *http.Request) {
			var body apiv1.ReleaseCommand
			if err := decodeStrict(r.Body, &body); err != nil {
				writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
				return
			}
			st, err := cmd(r.Context(), r.PathValue("id"), body)
			if err != nil {
				writeFailure(w, err)
				return
			}
			writeJSON(w, http.StatusOK, st)
		})
	}
}

// releaseFailure maps the release errors; false when err is none of them.
func releaseFailure(w http.ResponseWriter, err error) bool {
	switch {
	case errors.Is(err, releases.ErrUnknownRelease):
		writeError(w, http.StatusNotFound, apiv1.CodeUnknownRelease, err.Error())
	case errors.Is(err, releases.ErrBadRequest):
		writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
	case errors.Is(err, release.ErrEnded), errors.Is(err, release.ErrStarted), errors.Is(err, release.ErrNotStarted),
		errors.Is(err, release.ErrRollingBack):
		writeError(w, http.StatusConflict, apiv1.CodeReleaseState, err.Error())
	default:
		return false
	}
	return true
}

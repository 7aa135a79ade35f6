package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

// History limits (see apiv1).
const (
	DefaultHistoryLimit = apiv1.DefaultHistoryLimit
	MaxHistoryLimit     = apiv1.MaxHistoryLimit
)

// historyHandler serves GET /v1/services/{name}/history?limit=N: the newest
// N entries, oldest first.
func historyHandler(history func(ctx context.Context, service string, limit int) ([]model.HistoryEntry, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := historyLimit(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, apiv1.CodeBadRequest, err.Error())
			return
		}
		entries, err := history(r.Context(), r.PathValue("name"), limit)
		if err != nil {
			writeFailure(w, err)
			return
		}
		if entries == nil {
			entries = []model.HistoryEntry{} // an empty history is [], not null
		}
		writeJSON(w, http.StatusOK, entries)
	}
}

// historyLimit parses the query strictly: a typo such as ?limt=5 or
// ?limit=5x is an error, never the default.
func historyLimit(r *http.Request) (int, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, err
	}
	for k := range q {
		if k != "limit" {
			return 0, fmt.Errorf("unknown query parameter %q (only limit)", k)
		}
	}
	vals, ok := q["limit"]
	if !ok {
		return DefaultHistoryLimit, nil
	}
	if len(vals) != 1 {
		return 0, fmt.Errorf("limit: given %d times", len(vals))
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 1 || n > MaxHistoryLimit {
		return 0, fmt.Errorf("limit: %q is not a whole number between 1 and %d", vals[0], MaxHistoryLimit)
	}
	return n, nil
}

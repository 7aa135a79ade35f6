package consulkv_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/consulkv"
)

// A write Consul's ACLs refuse inside the transaction is reported as
// that, with Consul's message: not as a standing rollback intent, a lost
// lock or a conflict (which it was mistaken for before).
func TestSaveReportsACLDenial(t *testing.T) {
	const what = `Permission denied: token with AccessorID 'a1' lacks permission 'key:write' on "bg/services/web/intent"`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/txn" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"Results":null,"Errors":[{"OpIndex":0,"What":` + jsonString(what) + `}]}`))
	}))
	defer srv.Close()
	c, err := api.NewClient(&api.Config{Address: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	s := consulkv.New(c, "bg/")
	tr := model.Traffic{Stable: model.Blue, GreenPercent: 100, Phase: model.PhaseStable, Generation: 2}
	_, err = s.Save(context.Background(), "web", tr, 1, model.HistoryEntry{})
	if err == nil || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), "consul ACL refused the write") {
		t.Fatalf("err = %v, want the ACL refusal with Consul's message", err)
	}
	for _, e := range []error{state.ErrIntent, state.ErrConflict, state.ErrNotLeader} {
		if errors.Is(err, e) {
			t.Errorf("err %v is %v", err, e)
		}
	}
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

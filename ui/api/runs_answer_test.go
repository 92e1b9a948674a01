package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/ui/uitest"
)

// TestRunsShowTheAnsweredStatus: the runs summary gives each run the HTTP
// status it answered with, also when a sub-flow answered for it: a token
// request with a wrong client secret is answered 401 by the client-auth
// sub-flow, and the token flow's run says 401, not just "ok".
func TestRunsShowTheAnsweredStatus(t *testing.T) {
	env := uitest.Start(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"no-such-client"}, "client_secret": {"wrong"}}
	res, err := http.PostForm(env.URL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token with a wrong client: %d, want 401", res.StatusCode)
	}
	res, err = http.Get(env.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, tc := range []struct {
		flow    string
		status  int
		trigger string
	}{
		{"token", 401, "http.in"},          // answered by the sub-flow it called
		{"client-auth", 401, "core.input"}, // the sub-flow's own run
		{"jwks", 200, "http.in"},           // answered by its own http.respond
	} {
		t.Run(tc.flow, func(t *testing.T) {
			var s struct {
				Runs []struct {
					Status      string
					TriggerType string `json:"trigger_type"`
					HTTPStatus  int    `json:"http_status"`
				}
			}
			var body []byte
			// A run's trace is kept when its run ends, which can be just
			// after the client had its answer.
			for deadline := time.Now().Add(10 * time.Second); len(s.Runs) == 0; time.Sleep(10 * time.Millisecond) {
				var res *http.Response
				res, body = env.API(t, "GET", "/flows/"+tc.flow+"/runs?view=summary", nil)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", res.StatusCode, body)
				}
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatalf("summary %s %v", body, err)
				}
				if len(s.Runs) == 0 && time.Now().After(deadline) {
					t.Fatalf("no run after 10 s: %s", body)
				}
			}
			r := s.Runs[0]
			if r.HTTPStatus != tc.status || r.TriggerType != tc.trigger {
				t.Errorf("newest run answered %d (trigger %s), want %d (%s): %s", r.HTTPStatus, r.TriggerType, tc.status, tc.trigger,
					strings.SplitN(string(body), `"steps"`, 2)[0])
			}
		})
	}
}

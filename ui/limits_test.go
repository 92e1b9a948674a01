package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flowd/flowd/ui/uitest"
)

// repeatReader yields n bytes of 'a' with no length the client could announce.
type repeatReader struct{ n int }

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'a'
	}
	r.n -= k
	return k, nil
}

// TestFormBodyLimits: an oversized form is answered 413, whether its
// size is announced or only found while reading, on the login form and
// on the session pages.
func TestFormBodyLimits(t *testing.T) {
	t.Parallel()
	env := uitest.Start(t)
	c := env.Login(t)
	const big = 10 << 20
	tests := []struct {
		name    string
		path    string
		chunked bool
		csrf    bool
		want    string
	}{
		{"login announced", "/admin/login", false, false, "at most 65536 bytes"},
		{"login chunked", "/admin/login", true, false, "at most 65536 bytes"},
		{"page announced", "/admin/flows/hello/deploy", false, true, "at most 4259840 bytes"},
		{"page chunked", "/admin/flows/hello/deploy", true, true, "at most 4259840 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "password=x&next=%2Fadmin%2F&pad="
			if tc.csrf {
				prefix = "csrf=" + url.QueryEscape(c.CSRF) + "&pad=" // the CSRF check reads the form
			}
			var body io.Reader = io.MultiReader(strings.NewReader(prefix), &repeatReader{n: big})
			req, _ := http.NewRequest("POST", env.URL+tc.path, body)
			if !tc.chunked {
				req.ContentLength = int64(len(prefix) + big)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, text := c.Do(t, req)
			if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, tc.want) {
				t.Errorf("answer %d %q, want 413 %q", res.StatusCode, text, tc.want)
			}
		})
	}
	// A form within the limit still works.
	res := env.NewClient().PostForm(t, "/admin/login", url.Values{"password": {uitest.Password}})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("login after the oversized posts: %d", res.StatusCode)
	}
}

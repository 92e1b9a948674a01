package oidc

import (
	"bytes"
	"context"
	"errors"

	"github.com/a-h/templ"

	"github.com/flowd/flowd/engine"
)

func pageSpec() engine.Spec {
	return engine.Spec{
		Type: "oidc.page", Title: "Provider page", Category: Category,
		Description: "Renders one of the provider's HTML pages into msg.payload: \"error\" shows " +
			"msg.oauth_error (for requests that must not be redirected: unknown client, unregistered " +
			"redirect URI, expired sign-in); \"logged_out\" confirms a logout; \"logout_confirm\" asks " +
			"whether to sign out (msg.logout from oidc.end_session); \"logout_cancelled\" says the " +
			"person is still signed in. Answer with content type text/html and a Content-Security-Policy.",
		Fields: []engine.Field{
			{Name: "page", Label: "Page", Kind: engine.KindEnum, Default: "error",
				Enum: []string{"error", "logged_out", "logout_confirm", "logout_cancelled"},
				Help: "Which page to render (see the description)."},
		},
		Outputs: []string{"out"},
	}
}

type pageBlock struct{ page string }

var _ engine.Block = (*pageBlock)(nil)

func newPageFromConfig(s *engine.Setup, _ *provider) (engine.Block, error) {
	return &pageBlock{page: s.Config.String("page")}, nil
}

func (b *pageBlock) Process(ctx context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
	var c templ.Component
	switch b.page {
	case "error":
		e := mapOf(msg["oauth_error"])
		v := messageView{Title: "Cannot continue", Message: stringField(e, "error_description"), Code: stringField(e, "error")}
		if v.Message == "" {
			v.Message = "The request could not be handled."
		}
		c = messagePage(v)
	case "logout_confirm":
		l := mapOf(msg["logout"])
		v := logoutView{Action: stringField(l, "action"), CSRF: stringField(l, "csrf"), Username: stringField(l, "username"), ClientName: stringField(l, "client_name")}
		if !looksLikeSecret(v.CSRF) || !isLocalPath(v.Action) {
			return "", fmtErr("oidc.page", errors.New("logout_confirm needs msg.logout from oidc.end_session's confirm port"))
		}
		c = logoutPage(v)
	case "logout_cancelled":
		c = messagePage(messageView{Title: "Still signed in", Message: "You have not been signed out. You can close this window."})
	default:
		c = messagePage(messageView{Title: "Signed out", Message: "You are signed out. You can close this window."})
	}
	return renderPage(ctx, msg, "oidc.page", c)
}

// renderPage renders one of the provider's pages into msg.payload; the
// message leaves by "out".
func renderPage(ctx context.Context, msg engine.Msg, block string, c templ.Component) (string, error) {
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		return "", fmtErr(block, err)
	}
	msg["payload"] = buf.String()
	return "out", nil
}

package ui

// Observer receives the admin UI's security events: a metrics backend or
// the audit log implements it. Calls happen on the request's goroutine and
// must not block. No password, address or session id is passed.
type Observer interface {
	// AdminSignIn reports one admin sign-in attempt by its result:
	// SignInOK, SignInWrongPassword, SignInThrottled or SignInBusy.
	AdminSignIn(result string)
}

// Admin sign-in results.
const (
	SignInOK            = "ok"
	SignInWrongPassword = "wrong_password"
	SignInThrottled     = "throttled"
	SignInBusy          = "busy"
)

// SignInResults lists every AdminSignIn result.
func SignInResults() []string {
	return []string{SignInOK, SignInWrongPassword, SignInThrottled, SignInBusy}
}

func (s *Server) signIn(result string) {
	if s.d.Observer != nil {
		s.d.Observer.AdminSignIn(result)
	}
}

package httpblock

import "github.com/flowd/flowd/engine"

// CheckRequestError is the id of the lint check that http.request nodes
// wire their error port.
const CheckRequestError = "http.request_error_unwired"

// registerLint adds this package's lint checks to reg.
func registerLint(reg *engine.Registry) error {
	return reg.RegisterCheck(engine.ErrorPortCheck(CheckRequestError,
		"fails whenever the other server is slow, down or answers too much", "http.request"))
}

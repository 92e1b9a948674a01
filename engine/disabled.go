package engine

import "errors"

// Disabled nodes (Node.Disabled) stay in the document, are validated like
// any node (so enabling one again cannot break a deploy by surprise), and
// are never built: their factory is not called, a disabled trigger does
// not start, and the wires from and to them are dropped at deploy, so a
// run reaching one ends that branch there. Lint checks do not see them.

// appendValidation adds a factory's error to errs as validation errors
// naming node (unless the error names its own).
func appendValidation(errs ValidationErrors, node string, err error) ValidationErrors {
	var list ValidationErrors
	if errors.As(asValidation(node, err), &list) {
		return append(errs, list...)
	}
	return append(errs, verr(node, "", "%v", err))
}

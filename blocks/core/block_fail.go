package core

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/engine"
)

// defaultFailText is core.fail's error when it has no message expression.
const defaultFailText = "the flow failed on purpose"

func failSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.fail",
		Title:    "Fail",
		Category: Category,
		Description: "Ends the branch with an error: the message leaves by this node's \"error\" " +
			"port if it is wired, otherwise the run fails with the error text.",
		Fields: []engine.Field{
			{Name: "message", Label: "Error text", Kind: engine.KindExpr, Result: "string",
				Help: "Expression for the error text, e.g. \"unknown client \" + msg.client_id " +
					"(literal text needs quotes). Secrets from the message are cut out. Empty: \"" +
					defaultFailText + "\"."},
		},
	}
}

// failError is core.fail's error: its text is exactly the configured
// message (it lands in msg.error.message), and it wraps ErrFail.
type failError struct{ text string }

func (e *failError) Error() string { return e.text }
func (e *failError) Unwrap() error { return ErrFail }

type failBlock struct {
	text *engine.Expr // nil: defaultFailText
}

var _ engine.Block = (*failBlock)(nil)

func newFailFromConfig(s *engine.Setup) (engine.Block, error) {
	return newFail(s.Config.Expr("message")), nil
}

func newFail(text *engine.Expr) *failBlock { return &failBlock{text: text} }

func (b *failBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	text := defaultFailText
	if b.text != nil {
		t, err := b.text.EvalString(x, msg)
		if err != nil {
			return "", fmt.Errorf("message: %w", err)
		}
		if t != "" {
			text = scrub(x, t, msg, x.Redact(msg))
		}
	}
	return "", &failError{text: text}
}

package core

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/flowd/flowd/engine"
)

// logDataKey is the log attribute that holds the redacted message.
const logDataKey = "data"

// defaultLogText is what core.log writes when it has no message expression.
const defaultLogText = "flow message"

func logSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.log",
		Bounded:  true, // see engine.Spec.Bounded
		Title:    "Log",
		Category: Category,
		Description: "Writes a line to the flowd log with the run id and a redacted copy of " +
			"the message (attribute \"data\"): tokens, keys, passwords and other secrets never reach the log.",
		Fields: []engine.Field{
			{Name: "level", Label: "Level", Kind: engine.KindEnum, Default: "info",
				Enum: []string{"debug", "info", "warn", "error"},
				Help: "Log level. Lines below the server's level are skipped, message expression included."},
			{Name: "message", Label: "Message", Kind: engine.KindExpr, Result: "string",
				Help: "Expression for the log text, e.g. \"login by \" + msg.user.id. Secrets from " +
					"the message and token-shaped text are cut out. Empty: \"" + defaultLogText + "\"."},
		},
		Outputs: []string{"out"},
	}
}

type logBlock struct {
	log   *slog.Logger
	level slog.Level
	text  *engine.Expr // nil: defaultLogText
}

var _ engine.Block = (*logBlock)(nil)

func newLogFromConfig(s *engine.Setup) (engine.Block, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.Config.String("level"))); err != nil {
		return nil, s.Errorf("level", "%v", err)
	}
	return newLog(s.Logger, level, s.Config.Expr("message")), nil
}

func newLog(log *slog.Logger, level slog.Level, text *engine.Expr) *logBlock {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &logBlock{log: log, level: level, text: text}
}

func (b *logBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	// Redacting costs a copy of the message; skip it for a disabled level.
	if !b.log.Enabled(ctx, b.level) {
		return "out", nil
	}
	text := defaultLogText
	if b.text != nil {
		t, err := b.text.EvalString(x, msg)
		if err != nil {
			return "", fmt.Errorf("message: %w", err)
		}
		text = t
	}
	// The trace's rule: sensitive names, token and credential shapes, and
	// the values the run marked secret.
	red := x.Redact(msg)
	// Not "msg": slog already uses that key for the text.
	b.log.LogAttrs(ctx, b.level, scrub(x, text, msg, red), slog.String("run", x.RunID), slog.Any(logDataKey, red))
	return "out", nil
}

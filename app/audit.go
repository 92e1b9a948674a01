package app

import "context"

// Event types of flow changes, as package audit names them.
const (
	auditFlowSaved      = "flow.saved"
	auditFlowDeployed   = "flow.deployed"
	auditFlowUndeployed = "flow.undeployed"
	auditFlowRestored   = "flow.restored"
	auditFlowDeleted    = "flow.deleted"
)

// audit reports a flow change to Config.Audit; who made it is on ctx
// (engine.WithActor).
func (a *App) audit(ctx context.Context, typ, subject, why string) {
	if a.cfg.Audit != nil {
		a.cfg.Audit(ctx, typ, subject, why)
	}
}

// Package app joins the engine and the store: it is the one place that
// knows a flow is both a stored document (draft, versions, runs) and a
// running deployment. The admin API, the web UI and the CLI all go through
// it, so they agree on what "save", "deploy" and "restore" mean.
//
//	PutFlow ----> store draft (rev+1)              status: undeployed changes
//	Deploy  ----> validate -> store version n as the desired state -> this node's reconcile loop swaps it in   status: deployed
//	Restore ----> draft := version n -> Deploy (if it was deployed)
//	Start   ----> start the reconcile loop (node.go) -> under the cluster lock, install examples (first start) or upgrade unchanged ones
//
// # Stability
//
// app is flowd's internal flow service, shared by the admin API, the UI
// and the CLI; it is not a supported API and changes with them. Embedders
// reach the same operations through flowd.Flowd (App is handed out for
// flowd's own commands and tests). The supported packages are flowd,
// engine (with engine/enginetest), store (with store/storetest) and the
// block packages' Register and Provide functions.
package app

package model

// Effect is something a decision asks the executor to carry out. Both
// state machines (rollout, rolling) speak it; the executor runs a
// decision's effects in one order: persist, push endpoints, push route,
// record, confirm.
type Effect string

const (
	// EffectPersist stores the new state (fenced check-and-set) before anything else.
	EffectPersist Effect = "persist"
	// EffectPushEndpoints: the serving set of a cluster changed (rolls).
	EffectPushEndpoints Effect = "push_endpoints"
	// EffectPushRoute: the split, or where pools and mirrored requests go, changed.
	EffectPushRoute Effect = "push_route"
	// EffectConfirm waits for every proxy to ACK a flip back and records when.
	EffectConfirm Effect = "confirm"
)

package model

import "time"

// HistoryEntry records one change of a service's traffic state: who, when,
// why, from what to what. Entries are appended in the same transaction as
// the state they describe, so the record can never disagree with it.
type HistoryEntry struct {
	Generation uint64    `json:"generation"`
	At         time.Time `json:"at"`
	// Actor is who asked: "cli:USER@HOST (ADDR)", or "bg:REPLICA" for the
	// control plane's own decisions (analysis, rolls).
	Actor string `json:"actor"`
	// Replica and Term identify the leader that wrote it (fencing).
	Replica string `json:"replica,omitempty"`
	Term    uint64 `json:"term,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// From and To are the split before and after, in percent of green.
	FromGreen int    `json:"from_green_percent"`
	ToGreen   int    `json:"to_green_percent"`
	Phase     Phase  `json:"phase"`
	Stable    Color  `json:"stable"`
	Detail    string `json:"detail,omitempty"` // step, verdict or slot states
	Override  string `json:"override,omitempty"`
}

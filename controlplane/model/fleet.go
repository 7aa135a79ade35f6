package model

// Endpoint is one passing instance of a fleet.
type Endpoint struct {
	ID      string // Consul service ID
	Node    string // Consul node name
	Address string
	Port    int
	Weight  uint32 // 1..128, from Consul's Weights.Passing
	Version string // from service meta "version"
	// Slot is the host's place in a stateful service (Consul meta "slot"):
	// a replacement takes the slot of the host it replaces. Empty: the ID.
	Slot string
}

// SlotKey is the endpoint's ring-hash key and its pairing key in a roll.
func (e Endpoint) SlotKey() string {
	if e.Slot != "" {
		return e.Slot
	}
	return e.ID
}

// Fleet is the set of passing endpoints of one colour, sorted by ID.
type Fleet struct {
	Endpoints []Endpoint
}

// Versions returns the distinct versions running in the fleet, in order of first appearance.
func (f Fleet) Versions() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range f.Endpoints {
		if e.Version != "" && !seen[e.Version] {
			seen[e.Version] = true
			out = append(out, e.Version)
		}
	}
	return out
}

// Membership is both fleets of one service as last read from the source.
type Membership struct {
	Blue, Green Fleet
}

// Fleet returns the fleet of one colour.
func (m Membership) Fleet(c Color) Fleet {
	if c == Green {
		return m.Green
	}
	return m.Blue
}

package harness

// interner maps strings to small ints so long call logs stay compact.
// Error texts can embed varying details; past a bound they share one slot
// to cap memory. Not safe for concurrent use: callers hold their own lock.
type interner struct {
	strs  []string
	index map[string]int32
}

const maxInterned = 10000

// intern returns s's index; "" is -1.
func (n *interner) intern(s string) int32 {
	if s == "" {
		return -1
	}
	if n.index == nil {
		n.index = map[string]int32{}
	}
	if i, ok := n.index[s]; ok {
		return i
	}
	if len(n.strs) >= maxInterned {
		s = "(too many distinct strings)"
		if i, ok := n.index[s]; ok {
			return i
		}
	}
	i := int32(len(n.strs))
	n.strs = append(n.strs, s)
	n.index[s] = i
	return i
}

// str is the string at index i; -1 is "".
func (n *interner) str(i int32) string {
	if i < 0 {
		return ""
	}
	return n.strs[i]
}

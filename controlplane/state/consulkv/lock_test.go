package consulkv

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// holdLock makes two sessions and acquires key with the first: mine holds
// the leader lock, theirs stands for a replica that lost it.
func holdLock(t *testing.T, c *api.Client, key string) (mine, theirs string) {
	t.Helper()
	mine, _, err := c.Session().Create(&api.SessionEntry{TTL: "60s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	theirs, _, err = c.Session().Create(&api.SessionEntry{TTL: "60s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := c.KV().Acquire(&api.KVPair{Key: key, Session: mine}, nil); err != nil || !ok {
		t.Fatalf("acquire %s: %v %v", key, ok, err)
	}
	return mine, theirs
}

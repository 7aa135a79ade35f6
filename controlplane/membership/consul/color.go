package consul

import (
	"fmt"
	"slices"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
)

// ColorRule says how an instance's colour is read from Consul.
type ColorRule struct {
	BlueTag, GreenTag string
	// MetaKey, if set, reads the colour from Service.Meta instead of tags;
	// the value must be a colour name or one of the tags.
	MetaKey string
}

// colorOf returns an instance's colour, or an error saying why it has none.
func (r ColorRule) colorOf(s *api.AgentService) (model.Color, error) {
	if r.MetaKey != "" {
		v, ok := s.Meta[r.MetaKey]
		switch {
		case !ok:
			return "", fmt.Errorf("no meta %q", r.MetaKey)
		case v == string(model.Blue) || v == r.BlueTag:
			return model.Blue, nil
		case v == string(model.Green) || v == r.GreenTag:
			return model.Green, nil
		}
		return "", fmt.Errorf("meta %s=%q is not a colour", r.MetaKey, v)
	}
	blue, green := slices.Contains(s.Tags, r.BlueTag), slices.Contains(s.Tags, r.GreenTag)
	switch {
	case blue && green:
		return "", fmt.Errorf("tagged both %q and %q", r.BlueTag, r.GreenTag)
	case blue:
		return model.Blue, nil
	case green:
		return model.Green, nil
	}
	return "", fmt.Errorf("tagged neither %q nor %q", r.BlueTag, r.GreenTag)
}

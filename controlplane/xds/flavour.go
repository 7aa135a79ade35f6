package xds

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/bgctl/bg/controlplane/model"
)

// FlavourMetadataKey in a node's metadata overrides flavour detection, e.g.
// an Envoy that wants api_listeners, or a gRPC client reporting "envoy".
const FlavourMetadataKey = "bg.flavour"

// FlavourOf decides which listeners a node gets: Envoy (user agent "envoy")
// gets socket listeners, everything else is treated as proxyless gRPC.
func FlavourOf(n *core.Node) model.Flavour {
	if v := n.GetMetadata().GetFields()[FlavourMetadataKey].GetStringValue(); v != "" {
		switch model.Flavour(v) {
		case model.FlavourEnvoy, model.FlavourGRPC:
			return model.Flavour(v)
		}
	}
	if n.GetUserAgentName() == "envoy" {
		return model.FlavourEnvoy
	}
	return model.FlavourGRPC
}

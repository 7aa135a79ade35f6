// Package deploy holds what runs bg where users run it: Nomad jobs
// (nomad/) and a systemd unit (systemd/). It has no code; its tests check
// those files: the Nomad jobs parsed as HCL and asserted on (the bg config
// embedded in the job is loaded by bg's own config loader and validator),
// the unit checked by systemd-analyze verify and parsed. See README.md.
package deploy

package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// A reload compares the running Config with a new one that passed
// LoadValid. Diff sorts every difference into what a running bg applies
// (services added or removed; a service's analysis, gates, pools, mirror,
// windows and rolling settings; notifications; config.watch) and what
// needs a restart (everything else). One restart-only difference refuses
// the whole reload: nothing of it is applied.

// Change is what a reload applies. The zero Change changes nothing.
type Change struct {
	// Added are the new services, in file order.
	Added []Service
	// Removed names the services no longer in the file, sorted.
	Removed []string
	// Updated names the kept services whose live settings changed, sorted.
	Updated []string
	// Notifications: the notifications list changed.
	Notifications bool
	// Watch: config.watch changed.
	Watch bool
}

// Empty reports whether the change applies nothing.
func (c Change) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Updated) == 0 && !c.Notifications && !c.Watch
}

// String summarises the change for logs and the reload answer.
func (c Change) String() string {
	if c.Empty() {
		return "no change"
	}
	var parts []string
	if len(c.Added) > 0 {
		names := make([]string, len(c.Added))
		for i, s := range c.Added {
			names[i] = s.Name
		}
		parts = append(parts, "added "+strings.Join(names, ", "))
	}
	if len(c.Removed) > 0 {
		parts = append(parts, "removed "+strings.Join(c.Removed, ", "))
	}
	if len(c.Updated) > 0 {
		parts = append(parts, "updated "+strings.Join(c.Updated, ", "))
	}
	if c.Notifications {
		parts = append(parts, "notifications changed")
	}
	if c.Watch {
		parts = append(parts, "config.watch changed")
	}
	return strings.Join(parts, "; ")
}

// ErrRestartRequired marks a reload refused because a setting that cannot
// change live changed.
var ErrRestartRequired = errors.New("cannot change without a restart")

// RestartError lists every restart-only key that changed.
type RestartError struct {
	Keys []string // dotted paths, e.g. xds.listen, services[web].port
}

func (e *RestartError) Error() string {
	lines := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		lines[i] = k + " cannot change without a restart"
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrRestartRequired) true.
func (e *RestartError) Unwrap() error { return ErrRestartRequired }

// live are the keys Diff may apply: the services list is compared service
// by service, the rest must be equal.
var live = map[string]bool{"services": true, "notifications": true, "config": true}

// restartOnlyServiceKeys are a kept service's settings that change its
// clusters, listener or membership source, or a release's order.
var restartOnlyServiceKeys = map[string]bool{
	"consul_service": true, "port": true, "protocol": true, "strategy": true, "affinity": true, "depends_on": true,
}

// Diff compares the running config with a new one (both valid). It returns
// what to apply, or a *RestartError naming every restart-only key that
// changed (and then no Change).
func Diff(old, next *Config) (Change, error) {
	var restart []string
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*next)
	t := ov.Type()
	for i := range t.NumField() {
		key := tagOf(t.Field(i))
		if live[key] {
			continue
		}
		restart = append(restart, changedPaths(key, ov.Field(i), nv.Field(i))...)
	}
	var ch Change
	ch.Watch = old.Config.Watch != next.Config.Watch
	ch.Notifications = !reflect.DeepEqual(old.Notifications, next.Notifications)

	oldSvc := map[string]Service{}
	for _, s := range old.Services {
		oldSvc[s.Name] = s
	}
	kept := map[string]bool{}
	for _, s := range next.Services {
		o, ok := oldSvc[s.Name]
		if !ok {
			ch.Added = append(ch.Added, s)
			if len(s.DependsOn) > 0 {
				restart = append(restart, fmt.Sprintf("services[%s].depends_on", s.Name))
			}
			continue
		}
		kept[s.Name] = true
		at := "services[" + s.Name + "]"
		ot, nt := reflect.ValueOf(o), reflect.ValueOf(s)
		updated := false
		for i := range ot.NumField() {
			key := tagOf(ot.Type().Field(i))
			paths := changedPaths(at+"."+key, ot.Field(i), nt.Field(i))
			if len(paths) == 0 {
				continue
			}
			if restartOnlyServiceKeys[key] {
				restart = append(restart, paths...)
			} else {
				updated = true
			}
		}
		if updated {
			ch.Updated = append(ch.Updated, s.Name)
		}
	}
	for _, s := range old.Services {
		if kept[s.Name] {
			continue
		}
		ch.Removed = append(ch.Removed, s.Name)
		// Another service's depends_on naming it changed too, and is
		// reported there; its own order in releases is fixed at start.
		if len(s.DependsOn) > 0 {
			restart = append(restart, fmt.Sprintf("services[%s].depends_on", s.Name))
		}
	}
	slices.Sort(ch.Removed)
	slices.Sort(ch.Updated)
	if len(restart) > 0 {
		slices.Sort(restart)
		return Change{}, &RestartError{Keys: slices.Compact(restart)}
	}
	return ch, nil
}

// tagOf is a field's config key.
func tagOf(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}

// changedPaths names the leaves under path that differ: struct fields one
// by one, anything else (scalars, lists, maps) as a whole. Values are
// never printed: some are secrets.
func changedPaths(path string, a, b reflect.Value) []string {
	if a.Kind() == reflect.Struct {
		var out []string
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			out = append(out, changedPaths(path+"."+tagOf(f), a.Field(i), b.Field(i))...)
		}
		return out
	}
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	return []string{path}
}

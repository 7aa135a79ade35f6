package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// unknownKeys lists the keys of settings (viper's merged tree) that name no
// field of t, with their full paths (services[0].prot), sorted. It walks
// the whole tree, so, unlike mapstructure's Metadata.Unused, it also finds
// the unknown keys of a struct in which some value failed to decode.
func unknownKeys(settings map[string]any, t reflect.Type) []string {
	var out []string
	var walk func(v any, t reflect.Type, at string)
	walk = func(v any, t reflect.Type, at string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch x := v.(type) {
		case map[string]any:
			if t.Kind() != reflect.Struct {
				return // a decode error, or a map: any key goes
			}
			for k, val := range x {
				path := k
				if at != "" {
					path = at + "." + k
				}
				f, ok := fieldByKey(t, strings.ToLower(k))
				if !ok {
					out = append(out, path)
					continue
				}
				walk(val, f.Type, path)
			}
		case []any:
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return
			}
			for i, val := range x {
				walk(val, t.Elem(), fmt.Sprintf("%s[%d]", at, i))
			}
		}
	}
	walk(settings, t, "")
	slices.Sort(out)
	return out
}

// suggestKey returns the known key closest to the unknown one at path
// (e.g. "analysis" for "services[2].analyis"), or "" if none is within
// two edits (one for keys of up to four letters) or the parent is not a
// struct with known keys.
func suggestKey(path string) string {
	segs := strings.Split(path, ".")
	t := reflect.TypeOf(Config{})
	for _, seg := range segs[:len(segs)-1] {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg = seg[:i]
		}
		f, ok := fieldByKey(t, seg)
		if !ok {
			return ""
		}
		t = f.Type
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	key := segs[len(segs)-1]
	limit := 2
	if len(key) <= 4 {
		limit = 1
	}
	best, bestD := "", limit+1
	for _, f := range reflect.VisibleFields(t) {
		name := f.Tag.Get("mapstructure")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		if d := editDistance(key, name); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for _, f := range reflect.VisibleFields(t) {
		if tag := f.Tag.Get("mapstructure"); tag == key && tag != "-" && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// editDistance counts insertions, deletions, substitutions and swaps of
// adjacent letters (optimal string alignment), so "prot" is one from "port".
func editDistance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

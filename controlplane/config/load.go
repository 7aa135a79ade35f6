package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// envPrefix prefixes environment overrides: consul.address is BG_CONSUL_ADDRESS.
const envPrefix = "BG"

// Load builds a Config from, lowest to highest precedence: defaults, the YAML
// file at path (skipped if path is empty), BG_* environment variables, and
// overrides keyed by dotted key (e.g. "xds.listen"; nil values are ignored),
// which is how CLI flags are passed in. Unknown keys are errors. Problems
// with individual fields are returned wrapping Errors. Load fills defaults but
// does not call Validate.
func Load(path string, overrides map[string]any) (*Config, error) {
	cfg, src, fileErrs, err := load(path, overrides)
	if err != nil {
		return nil, err
	}
	if len(fileErrs) > 0 {
		return nil, fmt.Errorf("config %s: %w", src, fileErrs)
	}
	return cfg, nil
}

// LoadValid is Load then Validate, reporting every problem at once: unknown
// keys (each with a suggestion when a known key is one or two edits away),
// values that do not decode, and every Validate error of the rest, as one
// Errors, file problems first. A Validate error about a field that did not
// decode (or a part of it) is left out: the decode error says it. Errors
// that stop reading altogether (no file, malformed YAML, an unknown
// override) are returned alone, as by Load.
func LoadValid(path string, overrides map[string]any) (*Config, error) {
	cfg, _, fileErrs, err := load(path, overrides)
	if err != nil {
		return nil, err
	}
	es := fileErrs
	if verr := cfg.Validate(); verr != nil {
		var ves Errors
		if !errors.As(verr, &ves) {
			return nil, verr
		}
		for _, ve := range ves {
			if !coveredBy(ve.Path, fileErrs) {
				es = append(es, ve)
			}
		}
	}
	if len(es) > 0 {
		return nil, es
	}
	return cfg, nil
}

// coveredBy reports whether a Validate error at path is about a field that
// did not decode: the same field, inside it, or the list holding it.
func coveredBy(path string, fileErrs Errors) bool {
	for _, fe := range fileErrs {
		if fe.Message == unknownKey || strings.HasPrefix(fe.Message, unknownKey+" ") {
			continue
		}
		if within(path, fe.Path) || within(fe.Path, path) {
			return true
		}
	}
	return false
}

// within reports whether path is at or below parent: "a.b" and "a.b[2]" are within "a.b".
func within(path, parent string) bool {
	if !strings.HasPrefix(path, parent) {
		return false
	}
	rest := path[len(parent):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

const unknownKey = "unknown key"

// load reads the sources into a Config with defaults filled. fileErrs are
// per-field problems (values that did not decode, then unknown keys); cfg is
// still filled as far as it decoded. err stops reading altogether.
func load(path string, overrides map[string]any) (cfg *Config, src string, fileErrs Errors, err error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	if path != "" {
		if err := readFile(v, path); err != nil {
			return nil, "", nil, err
		}
	}
	if err := applyOverrides(v, overrides); err != nil {
		return nil, "", nil, err
	}

	src = "defaults and environment"
	if path != "" {
		src = path
	}
	cfg = &Config{}
	var md mapstructure.Metadata
	err = v.Unmarshal(cfg, viper.DecodeHook(durationHook), func(dc *mapstructure.DecoderConfig) {
		dc.Metadata = &md
	})
	if err != nil {
		es, ok := decodeErrors(err)
		if !ok {
			return nil, "", nil, fmt.Errorf("config %s: %w", src, err)
		}
		fileErrs = es
	}
	// Metadata names nested keys fully (services[0].prot), unlike
	// ErrorUnused, but not those of a struct where a value failed to decode:
	// unknownKeys walks the whole tree.
	unknown := append(unknownKeys(v.AllSettings(), reflect.TypeOf(Config{})), md.Unused...)
	slices.Sort(unknown)
	for _, k := range slices.Compact(unknown) {
		msg := unknownKey
		if s := suggestKey(k); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		fileErrs = append(fileErrs, FieldError{Path: k, Message: msg})
	}
	// Keys lists what was decoded; null values are skipped, so they count as unset.
	decoded := make(map[string]bool, len(md.Keys))
	for _, k := range md.Keys {
		decoded[k] = true
	}
	// A service without a port has no Envoy listener; port: 0 is a mistake.
	for i, s := range cfg.Services {
		at := fmt.Sprintf("services[%d].port", i)
		if s.Port == 0 && decoded[at] && !slices.ContainsFunc(fileErrs, func(e FieldError) bool { return e.Path == at }) {
			fileErrs = append(fileErrs, FieldError{Path: at, Message: badPort(0)})
		}
	}
	defaultServices(cfg.Services, func(k string) bool { return decoded[k] })
	defaultReleaseGroups(cfg.Releases, func(k string) bool { return decoded[k] })
	judgeRolls(cfg)
	return cfg, src, fileErrs, nil
}

func readFile(v *viper.Viper, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err) // *PathError names the path
	}
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		// Drop viper's "While parsing config:" wrapper.
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			err = pe.Unwrap()
		}
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	return nil
}

// applyOverrides rejects unknown keys up front: a typo in a CLI flag's key
// would otherwise surface as a confusing "unknown key" blamed on the file.
func applyOverrides(v *viper.Viper, overrides map[string]any) error {
	var unknown []string
	for k, val := range overrides {
		k = strings.ToLower(k)
		if _, ok := defaults[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		if val != nil {
			v.Set(k, val)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("overrides: unknown keys: %s", strings.Join(unknown, ", "))
	}
	return nil
}

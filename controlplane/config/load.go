package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
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
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	if path != "" {
		if err := readFile(v, path); err != nil {
			return nil, err
		}
	}
	if err := applyOverrides(v, overrides); err != nil {
		return nil, err
	}

	src := "defaults and environment"
	if path != "" {
		src = path
	}
	var cfg Config
	var md mapstructure.Metadata
	err := v.Unmarshal(&cfg, viper.DecodeHook(durationHook), func(dc *mapstructure.DecoderConfig) {
		dc.Metadata = &md
	})
	if err != nil {
		if es, ok := decodeErrors(err); ok {
			err = es
		}
		return nil, fmt.Errorf("config %s: %w", src, err)
	}
	// Metadata names nested keys fully (services[0].prot), unlike ErrorUnused.
	if len(md.Unused) > 0 {
		slices.Sort(md.Unused)
		es := make(Errors, len(md.Unused))
		for i, k := range md.Unused {
			es[i] = FieldError{Path: k, Message: "unknown key"}
		}
		return nil, fmt.Errorf("config %s: %w", src, es)
	}
	// Keys lists what was decoded; null values are skipped, so they count as unset.
	decoded := make(map[string]bool, len(md.Keys))
	for _, k := range md.Keys {
		decoded[k] = true
	}
	defaultServices(cfg.Services, func(k string) bool { return decoded[k] })
	defaultReleaseGroups(cfg.Releases, func(k string) bool { return decoded[k] })
	judgeRolls(&cfg)
	return &cfg, nil
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

package config

import (
	"fmt"
	"reflect"
	"time"
)

var durationType = reflect.TypeOf(time.Duration(0))

// durationHook parses strings like "30s" into time.Duration. It replaces
// viper's default hook, which hides ParseDuration's detail, and it rejects
// bare numbers, which mapstructure would otherwise take as nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		d, err := time.ParseDuration(data.(string))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write e.g. 30s or 5m)", data)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("duration %v has no unit (write e.g. 30s or 5m)", data)
	}
	return data, nil
}

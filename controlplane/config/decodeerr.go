package config

import (
	"errors"

	"github.com/go-viper/mapstructure/v2"
)

// decodeErrors turns mapstructure's multi-line error into Errors so Load
// reports file problems the same way Validate does. ok is false if err holds
// anything but per-field decode errors.
func decodeErrors(err error) (es Errors, ok bool) {
	var walk func(error) bool
	walk = func(e error) bool {
		if de, isField := e.(*mapstructure.DecodeError); isField {
			es = append(es, FieldError{Path: de.Name(), Message: de.Unwrap().Error()})
			return true
		}
		if j, isJoin := e.(interface{ Unwrap() []error }); isJoin {
			for _, x := range j.Unwrap() {
				if !walk(x) {
					return false
				}
			}
			return true
		}
		if u := errors.Unwrap(e); u != nil {
			return walk(u)
		}
		return false
	}
	return es, walk(err)
}

package engine

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// ErrNoService is wrapped by Service's error when the host gave the runtime
// no value of the asked type.
var ErrNoService = errors.New("service not provided")

// errNoServiceCause lets errors.Is find both ErrInvalidFlow and
// ErrNoService in the deploy error of a factory that missed its service.
var errNoServiceCause = fmt.Errorf("%w: %w", ErrInvalidFlow, ErrNoService)

// Services holds the shared services block factories reach at deploy: a
// keyset manager, a client registry, an HTTP router, a scheduler. The host
// fills it before building the runtime (Options.Services), usually through
// each block package's Provide function; a factory looks its value up with
// Service. The key is the value's static type, so a block package keys its
// services by a type of its own and no other package can replace them.
//
// Registration needs no services: a Registry is specs and factories only,
// so tooling (the JSON Schema, docs, `flowd validate`) builds one bare.
// Services is safe for concurrent use; a nil *Services holds nothing.
type Services struct {
	mu sync.RWMutex
	m  map[reflect.Type]any
}

// NewServices returns an empty set of services.
func NewServices() *Services { return &Services{m: map[reflect.Type]any{}} }

// Provide adds v as the service of type T. A second value of the same type
// is an error: two packages (or two calls) would otherwise disagree about
// which one factories see.
func Provide[T any](s *Services, v T) error {
	t := reflect.TypeFor[T]()
	if s == nil {
		return fmt.Errorf("provide %v: nil Services", t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.m[t]; dup {
		return fmt.Errorf("provide %v: already provided", t)
	}
	s.m[t] = v
	return nil
}

// Lookup returns the service of type T, if one was provided.
func Lookup[T any](s *Services) (T, bool) {
	var zero T
	if s == nil {
		return zero, false
	}
	s.mu.RLock()
	v, ok := s.m[reflect.TypeFor[T]()]
	s.mu.RUnlock()
	if !ok {
		return zero, false
	}
	return v.(T), true
}

// Service returns the service of type T the runtime was given, for a
// factory. When there is none the error wraps ErrNoService and names the
// type; a block package usually says which Provide call was missing. The
// deploy error a factory returns it in still matches ErrNoService.
func Service[T any](s *Setup) (T, error) {
	v, ok := Lookup[T](s.Services)
	if !ok {
		return v, fmt.Errorf("%v: %w", reflect.TypeFor[T](), ErrNoService)
	}
	return v, nil
}

// ServiceOr is Service for a factory that can check its config without
// its service: when the node is only validated (Setup.Validating) on a
// runtime without one, it returns offline() instead, a stand-in the block
// never runs with. At deploy a missing service is an error wrapping
// ErrNoService that names provide, what the host must call
// ("jose.Provide").
func ServiceOr[T any](s *Setup, provide string, offline func() T) (T, error) {
	v, err := Service[T](s)
	switch {
	case err == nil:
		return v, nil
	case s.Validating:
		return offline(), nil
	}
	return v, fmt.Errorf("%w (call %s)", err, provide)
}

package config

import (
	"errors"
	"strings"
)

// ErrInvalid is matched (with errors.Is) by every [*Errors] returned by this package.
var ErrInvalid = errors.New("config: invalid configuration")

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the full key path, such as "appservice.retry.max" or "management.admins[1]".
	// It is empty for problems of the file as a whole, such as a YAML syntax error.
	Key string
	// Message says what is wrong. It never contains a secret value.
	Message string
}

// String formats the problem as "key: message".
func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Errors is every problem found in a configuration. Its Error method prints one problem per
// line. errors.Is(err, ErrInvalid) is true for it.
type Errors struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is [ErrInvalid].
func (e *Errors) Is(target error) bool { return target == ErrInvalid }

// Add records a problem.
func (e *Errors) Add(key, message string) {
	e.Problems = append(e.Problems, Problem{Key: key, Message: message})
}

// Has reports whether a problem is recorded for key.
func (e *Errors) Has(key string) bool {
	for _, p := range e.Problems {
		if p.Key == key {
			return true
		}
	}
	return false
}

// Err returns e when it holds a problem and nil otherwise, so that a function collecting
// problems can end with "return errs.Err()" without returning a typed nil.
func (e *Errors) Err() error {
	if e == nil || len(e.Problems) == 0 {
		return nil
	}
	return e
}

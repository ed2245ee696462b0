//go:build !linux

package testcgroup

import "errors"

// Jail is the cgroup a run moved itself into; there is none off Linux.
type Jail struct{}

// Enter fails off Linux: there are no cgroups.
func Enter(prefix string) (*Jail, error) { return nil, errors.New("no cgroups off Linux") }

// Dir is "".
func (j *Jail) Dir() string { return "" }

// Leftovers is nil.
func (j *Jail) Leftovers() []string { return nil }

// Leave does nothing.
func (j *Jail) Leave() []string { return nil }

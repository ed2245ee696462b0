//go:build !unix

package main

import "github.com/tetherproc/tether"

// continueTree does nothing: without SIGSTOP there is no stopped process to
// continue (Windows has no SIGCONT).
func continueTree(*tether.Process) {}

//go:build !unix

package main

import "os"

// notifyResize: no SIGWINCH here; the size is the one at connect.
func notifyResize(chan<- os.Signal) {}

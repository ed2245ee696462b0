//go:build !linux

package main

import "fmt"

const envTeardownParent = "TETHER_BENCH_TEARDOWN_PARENT"

func teardownParent(int) {}

func benchTeardown() { fmt.Println("\nTeardown latency: measured on Linux only") }

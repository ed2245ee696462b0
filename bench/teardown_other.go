//go:build !linux

package main

import "fmt"

const envTeardownParent = "TETHER_BENCH_TEARDOWN_PARENT"

func teardownParent(int) {}

func benchTeardown() { fmt.Println("\nTeardown latency: measured on Linux only") }

const envMatrixParent = "TETHER_BENCH_MATRIX_PARENT"

func matrixParent(string) {}

func benchMatrix() { fmt.Println("\nGuarantee matrix: measured on Linux only") }

func benchUp() { fmt.Println("\ntether up at scale: measured on Linux only") }

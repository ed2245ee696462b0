//go:build !linux

package main

import "fmt"

func benchPID1() { fmt.Println("\nAs PID 1 of a container: measured on Linux only") }

//go:build !linux

package main

import "errors"

func ipcCeiling(bool, int) (float64, string, error) {
	return 0, "", errors.New("measured on Linux only")
}

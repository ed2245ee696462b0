package main

import (
	"os"
	"testing"
)

// "Is stdout a terminal?" was "is it a character device" off Linux, which
// /dev/null (NUL on Windows) also is.
func TestIsTerminalDevNull(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Errorf("%s is a terminal, says isTerminal", os.DevNull)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is a terminal, says isTerminal")
	}
	if upUseColor("auto", null, func(string) string { return "" }) {
		t.Errorf("tether up colors its output to %s", os.DevNull)
	}
}

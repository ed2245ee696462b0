package tether

import (
	"errors"
	"testing"
)

func TestCRTTable(t *testing.T) {
	b, err := crtTable([]uint64{crtNoHandle, crtNoHandle, crtNoHandle, 0x1234}, []byte{0, 0, 0, crtFOPEN | crtFPIPE})
	if err != nil {
		t.Fatal(err)
	}
	// 4 + 4 flags + 4 handles of 8 bytes, the handles unaligned after the
	// flags, as libuv lays them out.
	if len(b) != 40 || b[0] != 4 || b[7] != crtFOPEN|crtFPIPE || b[8] != 0xff || b[32] != 0x34 || b[33] != 0x12 {
		t.Fatalf("table % x", b)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		fd   int
		want uint64
		err  bool
	}{
		{"the-channel", b, 3, 0x1234, false},
		{"no-handle", b, 0, 0, true},
		{"past-the-end", b, 4, 0, true},
		{"negative", b, -1, 0, true},
		{"empty", nil, 3, 0, true},
		{"cut-short", b[:30], 3, 0, true},
		{"count-negative", []byte{0xff, 0xff, 0xff, 0xff}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseCRTFD(tc.b, tc.fd)
			if h != tc.want || (err != nil) != tc.err {
				t.Fatalf("got %#x, %v", h, err)
			}
		})
	}
	if _, err := parseCRTFD(b, 2); !errors.Is(err, errNoCRTFD) {
		t.Errorf("fd 2: %v, want errNoCRTFD", err)
	}
	if _, err := crtTable(make([]uint64, 8000), make([]byte, 8000)); err == nil {
		t.Error("a table over 64 KiB was built")
	}
}

// FuzzParseCRTFD: whatever a parent passed, parsing neither panics nor
// reads past the table.
func FuzzParseCRTFD(f *testing.F) {
	b, _ := crtTable([]uint64{crtNoHandle, 7}, []byte{0, crtFOPEN})
	f.Add(b, 1)
	f.Add([]byte{1, 0, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, b []byte, fd int) {
		_, _ = parseCRTFD(b, fd)
	})
}

package tether

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

// frame is a frame as libuv writes one: flags, data_length, the transfer
// record if flags say so, the data.
func frame(flags uint32, data string) []byte {
	b := make([]byte, uvFrameHeaderLen)
	binary.LittleEndian.PutUint32(b[0:], flags)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(data)))
	if flags&uvFrameHasSocketXfer != 0 {
		b = append(b, bytes.Repeat([]byte{0xcc}, uvSocketXferLen)...)
	}
	return append(b, data...)
}

// readAll reads the stream inside the frames of r to its end.
func readAll(r io.Reader) ([]byte, error) {
	var u uvFramer
	var out []byte
	buf := make([]byte, 7) // smaller than a frame: reads stop inside frames
	for {
		n, err := u.read(r, buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestUVFrames(t *testing.T) {
	// What write writes, read gives back, whatever the pieces it arrives in.
	var w bytes.Buffer
	var u uvFramer
	for _, m := range []string{`"ready"` + "\n", "", `{"a":1}` + "\n" + `{"b":2}` + "\n"} {
		if n, err := u.write(&w, []byte(m)); n != len(m) || err != nil {
			t.Fatalf("write %q: %d, %v", m, n, err)
		}
	}
	if !bytes.Equal(w.Bytes()[:uvFrameHeaderLen], frame(uvFrameHasData, `"ready"`+"\n")[:uvFrameHeaderLen]) {
		t.Fatalf("header % x", w.Bytes()[:uvFrameHeaderLen])
	}
	got, err := readAll(iotest.OneByteReader(bytes.NewReader(w.Bytes())))
	if want := `"ready"` + "\n" + `{"a":1}` + "\n" + `{"b":2}` + "\n"; string(got) != want || err != io.EOF {
		t.Fatalf("got %q, %v", got, err)
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"empty-frame", frame(0, ""), "", io.EOF},
		{"socket-skipped", append(frame(uvFrameHasData|uvFrameHasSocketXfer, "after\n"), frame(uvFrameHasData, "x")...), "after\nx", io.EOF},
		{"bad-flags", frame(0x10, ""), "", errBadFrame},
		{"length-without-data-flag", frame(0, "x"), "", errBadFrame},
		{"cut-in-header", frame(uvFrameHasData, "abc")[:9], "", io.ErrUnexpectedEOF},
		{"cut-in-data", frame(uvFrameHasData, "abcdef")[:uvFrameHeaderLen+3], "abc", io.ErrUnexpectedEOF},
		{"cut-in-socket-record", frame(uvFrameHasSocketXfer, "")[:100], "", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(bytes.NewReader(tc.in))
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// deadlineReader fails every other read with a deadline, as a Channel's
// kicked read does: the framer must resume where it stopped.
type deadlineReader struct {
	r    io.Reader
	fail bool
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.fail = !d.fail
	if d.fail {
		return 0, os.ErrDeadlineExceeded
	}
	return d.r.Read(p)
}

func TestUVFramesResume(t *testing.T) {
	in := append(frame(uvFrameHasData, "one\n"), frame(uvFrameHasData|uvFrameHasSocketXfer, "two\n")...)
	r := &deadlineReader{r: iotest.OneByteReader(bytes.NewReader(in))}
	var u uvFramer
	var out []byte
	buf := make([]byte, 3)
	for i := 0; i < 10000; i++ {
		n, err := u.read(r, buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	if string(out) != "one\ntwo\n" {
		t.Fatalf("got %q", out)
	}
}

// FuzzUVFrames: whatever a peer writes, the framer neither panics nor gives
// back more bytes than the frames' data.
func FuzzUVFrames(f *testing.F) {
	f.Add(frame(uvFrameHasData, `"x"`+"\n"))
	f.Add(frame(uvFrameHasData|uvFrameHasSocketXfer, "y"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _ := readAll(bytes.NewReader(in))
		if len(out) > len(in) {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
	})
}

package tether

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"iter"
)

// DefaultMaxLine is the line limit Lines uses when given 0.
const DefaultMaxLine = 64 << 10

var errNilLines = errors.New("tether: Lines of a nil io.Reader (Process.Stdout and Stderr are nil unless the stream is Pipe())")

// Lines iterates over the lines of r, without their "\n" or "\r\n", holding
// at most max bytes (DefaultMaxLine if max <= 0; at least 16) whatever r
// sends. A longer line is not buffered: it is yielded in pieces of max bytes
// with ErrLineTooLong, then its remainder (possibly empty) with a nil error,
// so a caller may join, truncate or drop it. The
// iteration ends at EOF (a last line without "\n" is yielded) or yields a
// final ("", err) for any other read error. A nil r (Process.Stdout when
// Cmd.Stdout is not Pipe()) yields ("", err) alone.
//
//	for line, err := range tether.Lines(p.Stdout(), 0) {
//		if err != nil && !errors.Is(err, tether.ErrLineTooLong) {
//			return err
//		}
//		fmt.Println(line)
//	}
func Lines(r io.Reader, max int) iter.Seq2[string, error] {
	if max <= 0 {
		max = DefaultMaxLine
	}
	if max < 16 {
		max = 16 // bufio's minimum
	}
	return func(yield func(string, error) bool) {
		if r == nil {
			yield("", errNilLines)
			return
		}
		br := bufio.NewReaderSize(r, max)
		split := false // inside a line already yielded in part
		for {
			b, err := br.ReadSlice('\n')
			switch {
			case err == nil:
				split = false
				if !yield(string(bytes.TrimSuffix(b[:len(b)-1], []byte("\r"))), nil) {
					return
				}
			case errors.Is(err, bufio.ErrBufferFull):
				split = true
				if !yield(string(b), ErrLineTooLong) {
					return
				}
			case errors.Is(err, io.EOF):
				if len(b) > 0 || split {
					yield(string(b), nil)
				}
				return
			default:
				if (len(b) > 0 || split) && !yield(string(b), nil) {
					return
				}
				yield("", err)
				return
			}
		}
	}
}

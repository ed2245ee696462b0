package tether_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tetherproc/tether"
)

type piece struct {
	s    string
	long bool
}

func collect(r io.Reader, max int) ([]piece, error) {
	var out []piece
	for s, err := range tether.Lines(r, max) {
		if err != nil && !errors.Is(err, tether.ErrLineTooLong) {
			return out, err
		}
		out = append(out, piece{s, err != nil})
	}
	return out, nil
}

func TestLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		max      int
		want     []piece
	}{
		{"empty", "", 16, nil},
		{"one", "a\n", 16, []piece{{"a", false}}},
		{"no-final-newline", "a\nb", 16, []piece{{"a", false}, {"b", false}}},
		{"crlf", "a\r\nb\r\n", 16, []piece{{"a", false}, {"b", false}}},
		{"blank-lines", "\n\n", 16, []piece{{"", false}, {"", false}}},
		{"split", strings.Repeat("x", 20) + "\nok\n", 16, []piece{{strings.Repeat("x", 16), true}, {"xxxx", false}, {"ok", false}}},
		{"split-exact", strings.Repeat("x", 16) + "\n", 16, []piece{{strings.Repeat("x", 16), true}, {"", false}}},
		{"split-at-eof", strings.Repeat("x", 16), 16, []piece{{strings.Repeat("x", 16), true}, {"", false}}},
		{"twice", strings.Repeat("x", 40) + "\n", 16, []piece{{strings.Repeat("x", 16), true}, {strings.Repeat("x", 16), true}, {strings.Repeat("x", 8), false}}},
		{"small-max-raised", "abcdefghijklmnopq\n", 1, []piece{{"abcdefghijklmnop", true}, {"q", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(strings.NewReader(tc.in), tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

func TestLinesReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom))
	got, err := collect(r, 16)
	if !errors.Is(err, boom) || len(got) != 2 || got[1].s != "b" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestLinesStopEarly(t *testing.T) {
	t.Parallel()
	n := 0
	for range tether.Lines(strings.NewReader("a\nb\nc\n"), 0) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatal(n)
	}
}

// Whatever the input and limit, pieces stay within the limit and joining
// them gives back the input (line endings normalised to "\n").
func FuzzLines(f *testing.F) {
	f.Add("a\nb\r\nc", 16)
	f.Add(strings.Repeat("y", 100)+"\n", 20)
	f.Add("\n\n\r\n", 1)
	f.Fuzz(func(t *testing.T, in string, max int) {
		in = strings.ReplaceAll(in, "\r", "")
		if max > 1<<16 || max < -1 {
			max = 100
		}
		limit := max
		if limit <= 0 {
			limit = tether.DefaultMaxLine
		}
		limit = maxInt(limit, 16)
		pieces, err := collect(strings.NewReader(in), max)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, p := range pieces {
			if len(p.s) > limit {
				t.Fatalf("piece of %d bytes, limit %d", len(p.s), limit)
			}
			b.WriteString(p.s)
			if !p.long {
				b.WriteByte('\n')
			}
		}
		want := in
		if want != "" && !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if b.String() != want {
			t.Fatalf("rejoined %q, want %q", b.String(), want)
		}
	})
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

package procfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entry is one process type of a Procfile: the line "web: bundle exec puma"
// is Entry{Name: "web", Command: "bundle exec puma"}.
type Entry struct {
	Name    string // matches [A-Za-z0-9_-]+
	Command string // a shell command line; never empty, no surrounding blanks
	Line    int    // 1-based line of the entry in its file; 0 if not parsed
}

// SyntaxError reports where a Procfile or .env file is malformed. Line and
// Col are 1-based; Col counts bytes, as go/scanner does. Line is 0 for an
// error about the whole file (a Procfile with no entries). Test for it with
// errors.As.
type SyntaxError struct {
	File string // "Procfile", ".env", or the path given to ParseFile or ParseEnvFile
	Line int
	Col  int
	Msg  string
}

// Error reads like a compiler's message, so editors can jump to it:
// "procfile: Procfile:3:5: missing command after ':'".
func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("procfile: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > len("procfile: ") {
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Parse reads a Procfile the way foreman does: one "name: command" entry a
// line, in order. Blank lines and lines whose first non-blank is '#' are
// skipped; "\r\n" line ends are accepted.
//
// Foreman keeps only lines matching /^([A-Za-z0-9_-]+):\s*(.+)$/ and silently
// drops the rest; Parse accepts exactly the entries foreman would run and
// reports every other line as an error instead, so a typo never means a
// process that quietly does not start. The command is what follows the colon,
// without the blanks around it. A name given twice is an error (foreman
// would start one of them only), and so is a Procfile with no entries.
//
// Errors from r are returned wrapped; syntax errors are a *SyntaxError whose
// File is "Procfile" (ParseFile uses its path).
func Parse(r io.Reader) ([]Entry, error) {
	return parse(r, "Procfile")
}

// ParseFile is Parse on the file at path; errors name the path. When the file
// cannot be read the error wraps the cause: errors.Is(err, fs.ErrNotExist)
// holds for a missing Procfile.
func ParseFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("procfile: %w", err)
	}
	defer f.Close() // read-only: a close error loses nothing
	return parse(f, path)
}

func parse(r io.Reader, file string) ([]Entry, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("procfile: reading %s: %w", file, err)
	}
	var entries []Entry
	seen := make(map[string]int) // name -> line of its entry
	for n, line := range splitLines(src) {
		n++ // 1-based
		if blank(line) || strings.HasPrefix(strings.TrimLeft(line, blanks), "#") {
			continue
		}
		e, col, msg := parseEntry(line)
		if msg != "" {
			return nil, &SyntaxError{File: file, Line: n, Col: col, Msg: msg}
		}
		if first, ok := seen[e.Name]; ok {
			return nil, &SyntaxError{File: file, Line: n, Col: 1,
				Msg: fmt.Sprintf("duplicate process name %q (first on line %d)", e.Name, first)}
		}
		seen[e.Name] = n
		e.Line = n
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, &SyntaxError{File: file, Msg: "no processes defined"}
	}
	return entries, nil
}

// parseEntry parses one non-blank, non-comment line. On error it returns the
// 1-based column and a message.
func parseEntry(line string) (e Entry, col int, msg string) {
	i := 0
	for i < len(line) && isNameByte(line[i]) {
		i++
	}
	switch {
	case i == 0 && strings.ContainsRune(blanks, rune(line[0])):
		// Foreman drops indented lines; say why this one is not an entry.
		return e, 1, "process name must start the line"
	case i == 0:
		return e, 1, fmt.Sprintf("invalid character %s at start of process name", quoteByteAt(line, 0))
	case i == len(line):
		return e, i + 1, fmt.Sprintf("missing ':' after process name %q", line)
	case line[i] != ':':
		return e, i + 1, fmt.Sprintf("invalid character %s in process name (want letters, digits, '_' or '-', then ':')", quoteByteAt(line, i))
	}
	cmd := strings.Trim(line[i+1:], blanks)
	if cmd == "" {
		return e, i + 2, "missing command after ':'"
	}
	return Entry{Name: line[:i], Command: cmd}, 0, ""
}

// Format writes entries as a Procfile that Parse reads back to the same names
// and commands, one "name: command" line each. It returns an error, writing
// nothing, for an entry Parse could not have returned: a name outside
// [A-Za-z0-9_-]+ or given twice, or a command that is empty, has blanks around
// it, or spans lines.
func Format(w io.Writer, entries []Entry) error {
	var b bytes.Buffer
	seen := make(map[string]bool)
	for _, e := range entries {
		if !validName(e.Name) {
			return fmt.Errorf("procfile: invalid process name %q", e.Name)
		}
		if seen[e.Name] {
			return fmt.Errorf("procfile: duplicate process name %q", e.Name)
		}
		seen[e.Name] = true
		if e.Command == "" || strings.Trim(e.Command, blanks) != e.Command || strings.ContainsRune(e.Command, '\n') {
			return fmt.Errorf("procfile: process %q: command %q cannot be written on one line", e.Name, e.Command)
		}
		b.WriteString(e.Name)
		b.WriteString(": ")
		b.WriteString(e.Command)
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// blanks are the characters Ruby's \s matches within a line, which is what
// foreman strips between the colon and the command.
const blanks = " \t\v\f\r"

func blank(s string) bool { return strings.Trim(s, blanks) == "" }

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// splitLines splits src into lines without their "\n" or "\r\n" ends. A final
// line without an end is kept.
func splitLines(src []byte) []string {
	s := strings.ReplaceAll(string(src), "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// quoteByteAt quotes the character at s[i] for an error message; a byte that
// is not UTF-8 is shown escaped.
func quoteByteAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return strconv.Quote(s[i : i+1])
	}
	return strconv.QuoteRune(r)
}

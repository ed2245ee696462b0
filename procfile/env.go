package procfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvVar is one variable set by a .env file.
type EnvVar struct {
	Key   string // matches [A-Za-z0-9_.]+, dotenv's key syntax
	Value string // after unquoting, unescaping and expansion
	Line  int    // 1-based line of the assignment that set Value; 0 if not parsed
}

// ParseEnv reads a .env file with the syntax of the dotenv gem, which foreman
// uses:
//
//	# a comment line
//	KEY=value               unquoted: blanks around it and a trailing " # comment" dropped
//	export KEY=value        "export " is allowed and ignored
//	KEY='literal $HOME\n'   single quotes: every byte literal, newlines included
//	KEY="a\tb\n${HOME}"     double quotes: \n \t \r \" \\ \$ escapes, expansion
//	KEY=                    the empty string
//	export KEY              allowed when the file sets KEY; changes nothing
//
// A '#' starts a comment at the start of an unquoted value or after a blank
// ("a#b" keeps its '#'). Quoted values may span lines. In double quotes a
// backslash before any other character is kept as written.
//
// In unquoted and double-quoted values $NAME and ${NAME} are replaced by the
// value NAME was given earlier in the file, else by lookup(NAME), else by
// the empty string. NAME is [A-Za-z_][A-Za-z0-9_]*; a '$' not followed by
// one is kept, and \$ is a literal '$'. A nil lookup means no outside
// environment; pass os.LookupEnv for the process's own. (The dotenv gem
// prefers the process environment over the file's earlier keys; ParseEnv
// prefers the file, so that the value a child sees for NAME and the one
// substituted for $NAME are the same.)
//
// A key set twice keeps its first position and its last value. Variables
// are returned in file order.
//
// Besides reporting errors, ParseEnv differs from the dotenv gem in that it
// runs no commands ("$(cmd)" stays as written), has no "KEY: value" form,
// keeps '$' before a digit ("pa$1word"), and keeps unknown backslash escapes.
//
// Where dotenv skips a line it cannot read, ParseEnv reports a *SyntaxError
// whose File is ".env" (ParseEnvFile uses its path): an invalid key, a
// missing '=', an unterminated quote or ${, text after a closing quote, and
// "export KEY" for a KEY the file does not set. Errors from r are returned
// wrapped.
func ParseEnv(r io.Reader, lookup func(string) (string, bool)) ([]EnvVar, error) {
	return parseEnv(r, ".env", lookup)
}

// ParseEnvFile is ParseEnv on the file at path; errors name the path. When
// the file cannot be read the error wraps the cause: errors.Is(err,
// fs.ErrNotExist) holds for a missing file.
func ParseEnvFile(path string, lookup func(string) (string, bool)) ([]EnvVar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("procfile: %w", err)
	}
	defer f.Close() // read-only: a close error loses nothing
	return parseEnv(f, path, lookup)
}

// FormatEnv writes vars as a .env file that ParseEnv reads back to the same
// keys and values, whatever the lookup: every value is double-quoted with
// \n \t \r \" \\ \$ escaped, so nothing is expanded. It returns an error,
// writing nothing, for a key outside [A-Za-z0-9_.]+.
func FormatEnv(w io.Writer, vars []EnvVar) error {
	var b bytes.Buffer
	for _, v := range vars {
		if !validKey(v.Key) {
			return fmt.Errorf("procfile: invalid .env key %q", v.Key)
		}
		b.WriteString(v.Key)
		b.WriteString(`="`)
		for i := 0; i < len(v.Value); i++ {
			switch c := v.Value[i]; c {
			case '\n':
				b.WriteString(`\n`)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			case '"', '\\', '$':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteString("\"\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func parseEnv(r io.Reader, file string, lookup func(string) (string, bool)) ([]EnvVar, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("procfile: reading %s: %w", file, err)
	}
	p := &envParser{
		s:      scanner{src: strings.ReplaceAll(string(src), "\r\n", "\n"), line: 1, col: 1},
		file:   file,
		lookup: lookup,
		index:  make(map[string]int),
	}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.vars, nil
}

// scanner is a position in a .env file's text.
type scanner struct {
	src  string
	off  int
	line int // 1-based line of src[off]
	col  int // 1-based byte column of src[off]
}

func (s *scanner) eof() bool  { return s.off >= len(s.src) }
func (s *scanner) peek() byte { return s.src[s.off] }

func (s *scanner) next() byte {
	c := s.src[s.off]
	s.off++
	if c == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	return c
}

// atEOL reports whether s is at the end of a line or of the file.
func (s *scanner) atEOL() bool { return s.eof() || s.peek() == '\n' }

func (s *scanner) skipBlanks() {
	for !s.eof() && strings.IndexByte(blanks, s.peek()) >= 0 {
		s.next()
	}
}

// skipLine moves s past the end of the current line.
func (s *scanner) skipLine() {
	for !s.eof() && s.next() != '\n' {
	}
}

type envParser struct {
	s      scanner
	file   string
	lookup func(string) (string, bool)
	vars   []EnvVar
	index  map[string]int // key -> its index in vars
	// exports are "export KEY" lines, checked once the whole file is read,
	// as dotenv does.
	exports []exportLine
}

type exportLine struct {
	key       string
	line, col int
}

func (p *envParser) errorf(line, col int, format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (p *envParser) parse() error {
	s := &p.s
	for !s.eof() {
		s.skipBlanks()
		if s.atEOL() || s.peek() == '#' {
			s.skipLine()
			continue
		}
		if err := p.assignment(); err != nil {
			return err
		}
	}
	for _, e := range p.exports {
		if _, ok := p.index[e.key]; !ok {
			return p.errorf(e.line, e.col, "export of %s, which this file does not set", e.key)
		}
	}
	return nil
}

// assignment parses one "[export] KEY=value" from the first non-blank of its
// line through the end of its (last) line.
func (p *envParser) assignment() error {
	s := &p.s
	line := s.line
	exported := false
	if rest := s.src[s.off:]; strings.HasPrefix(rest, "export") && len(rest) > len("export") &&
		strings.IndexByte(blanks, rest[len("export")]) >= 0 {
		for range len("export") {
			s.next()
		}
		s.skipBlanks()
		exported = true
		if s.atEOL() || s.peek() == '#' {
			return p.errorf(s.line, s.col, "missing variable name after export")
		}
	}
	keyLine, keyCol := s.line, s.col
	start := s.off
	for !s.eof() && isKeyByte(s.peek()) {
		s.next()
	}
	key := s.src[start:s.off]
	if key == "" {
		return p.errorf(s.line, s.col, "invalid character %s at start of variable name", quoteByteAt(s.src, s.off))
	}
	afterKey := s.col
	s.skipBlanks()
	if s.atEOL() || s.peek() == '#' {
		if exported {
			p.exports = append(p.exports, exportLine{key, keyLine, keyCol})
			s.skipLine()
			return nil
		}
		return p.errorf(keyLine, afterKey, "missing '=' after %s", key)
	}
	if s.peek() != '=' {
		if s.col == afterKey {
			return p.errorf(s.line, s.col, "invalid character %s in variable name (want letters, digits, '_' or '.')", quoteByteAt(s.src, s.off))
		}
		return p.errorf(keyLine, afterKey, "missing '=' after %s", key)
	}
	s.next() // '='
	s.skipBlanks()

	var value string
	var err error
	switch {
	case !s.eof() && s.peek() == '\'':
		value, err = p.singleQuoted()
	case !s.eof() && s.peek() == '"':
		value, err = p.doubleQuoted()
	default:
		value, err = p.unquoted()
	}
	if err != nil {
		return err
	}
	// After a closing quote only blanks and a comment may follow.
	s.skipBlanks()
	if !s.atEOL() && s.peek() != '#' {
		return p.errorf(s.line, s.col, "unexpected %s after closing quote", quoteByteAt(s.src, s.off))
	}
	s.skipLine()

	if i, ok := p.index[key]; ok {
		p.vars[i].Value, p.vars[i].Line = value, line
	} else {
		p.index[key] = len(p.vars)
		p.vars = append(p.vars, EnvVar{Key: key, Value: value, Line: line})
	}
	return nil
}

func (p *envParser) singleQuoted() (string, error) {
	s := &p.s
	line, col := s.line, s.col
	s.next() // opening quote
	end := strings.IndexByte(s.src[s.off:], '\'')
	if end < 0 {
		return "", p.errorf(line, col, "unterminated single-quoted value")
	}
	start := s.off
	for s.off < start+end {
		s.next()
	}
	s.next() // closing quote
	return s.src[start : start+end], nil
}

func (p *envParser) doubleQuoted() (string, error) {
	s := &p.s
	line, col := s.line, s.col
	s.next() // opening quote
	var b strings.Builder
	for {
		if s.eof() {
			return "", p.errorf(line, col, "unterminated double-quoted value")
		}
		switch c := s.peek(); c {
		case '"':
			s.next()
			return b.String(), nil
		case '\\':
			s.next()
			if s.eof() {
				return "", p.errorf(line, col, "unterminated double-quoted value")
			}
			switch e := s.peek(); e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\', '$':
				b.WriteByte(e)
			default:
				// Kept as written: "C:\Users" stays a Windows path.
				b.WriteByte('\\')
				continue
			}
			s.next()
		case '$':
			if err := p.expand(&b, len(s.src)); err != nil {
				return "", err
			}
		default:
			b.WriteByte(s.next())
		}
	}
}

// unquoted reads a value up to the end of its line, drops a trailing
// comment and blanks, and expands it. Backslashes are literal except in \$.
func (p *envParser) unquoted() (string, error) {
	s := &p.s
	start := s.off
	end := start
	for end < len(s.src) && s.src[end] != '\n' {
		// A '#' at the start of the value or after a blank starts a comment.
		if s.src[end] == '#' && (end == start || strings.IndexByte(blanks, s.src[end-1]) >= 0) {
			break
		}
		end++
	}
	end = start + len(strings.TrimRight(s.src[start:end], blanks))
	var b strings.Builder
	for s.off < end {
		switch c := s.peek(); {
		case c == '\\' && s.off+1 < end && s.src[s.off+1] == '$':
			s.next()
			b.WriteByte(s.next())
		case c == '$':
			if err := p.expand(&b, end); err != nil {
				return "", err
			}
		default:
			b.WriteByte(s.next())
		}
	}
	return b.String(), nil
}

// expand reads the $NAME or ${NAME} at s, which must not reach end, and
// writes its value to b. A '$' that starts neither is written as is.
func (p *envParser) expand(b *strings.Builder, end int) error {
	s := &p.s
	line, col := s.line, s.col
	s.next() // '$'
	braced := s.off < end && s.peek() == '{'
	if braced {
		s.next()
	}
	start := s.off
	for s.off < end && isVarByte(s.peek(), s.off == start) {
		s.next()
	}
	name := s.src[start:s.off]
	if braced {
		switch {
		case s.off >= end || s.peek() == '\n':
			return p.errorf(line, col, "unterminated ${")
		case s.peek() != '}':
			return p.errorf(s.line, s.col, "invalid character %s in ${...} (want a name: letters, digits, '_')", quoteByteAt(s.src, s.off))
		case name == "":
			return p.errorf(line, col, "empty name in ${}")
		}
		s.next() // '}'
	} else if name == "" {
		b.WriteByte('$')
		return nil
	}
	if i, ok := p.index[name]; ok {
		b.WriteString(p.vars[i].Value)
	} else if p.lookup != nil {
		v, _ := p.lookup(name)
		b.WriteString(v)
	}
	return nil
}

func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.'
}

func isVarByte(c byte, first bool) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || !first && '0' <= c && c <= '9'
}

func validKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isKeyByte(s[i]) {
			return false
		}
	}
	return true
}

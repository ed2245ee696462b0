package main

import (
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// upPalette is foreman's: one color per Procfile entry, in order, cycling
// (SGR parameters: cyan, yellow, green, magenta, red, blue, then bright).
var upPalette = []string{"36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94"}

// upOwnColor is tether's own name's: bold, readable on any background.
const upOwnColor = "1"

// upOwnName is the name tether's own messages appear under.
const upOwnName = "tether"

// upPrefixer writes lines after a name, padded to width, colored and
// timestamped, as foreman does ("12:00:01 web.1  | text"). Each line is one
// Write made under one lock, so lines of different processes never
// interleave.
type upPrefixer struct {
	width  int
	color  bool
	stamps bool

	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (p *upPrefixer) line(name, sgr, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buf[:0]
	if p.color {
		b = append(b, "\x1b["...)
		b = append(b, sgr...)
		b = append(b, 'm')
	}
	if p.stamps {
		b = time.Now().AppendFormat(b, "15:04:05 ")
	}
	b = append(b, name...)
	for i := len(name); i < p.width; i++ {
		b = append(b, ' ')
	}
	b = append(b, " |"...)
	if p.color {
		b = append(b, "\x1b[0m"...)
	}
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, '\n')
	_, _ = p.w.Write(b) // best effort: a broken stdout must not stop the processes
	p.buf = b[:0]
}

// upUseColor decides on colors: mode "always" or "never" says it; "auto"
// colors when w is a terminal, $NO_COLOR (https://no-color.org) turns
// colors off and $FORCE_COLOR on.
func upUseColor(mode string, w io.Writer, getenv func(string) string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	if getenv("NO_COLOR") != "" {
		return false
	}
	if v := getenv("FORCE_COLOR"); v != "" && v != "0" && v != "false" {
		return true
	}
	f, ok := w.(*os.File)
	if !ok || getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(f)
}

// upSignalName is "SIGTERM", as foreman writes "terminated by SIGTERM", or
// "signal 40" for one without a name.
func upSignalName(s os.Signal) string {
	ss, ok := s.(syscall.Signal)
	if !ok {
		return s.String()
	}
	if n := signalName(ss); n != strconv.Itoa(int(ss)) {
		return n
	}
	return "signal " + strconv.Itoa(int(ss))
}

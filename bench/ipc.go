package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tetherproc/tether"
)

var ipcN = flag.Int("ipc", 200000, "messages per IPC contender per round (round trips: a tenth)")

const envIPCChild = "TETHER_BENCH_IPC_CHILD"

// ipcMsg is the small message every contender sends.
type ipcMsg struct {
	Seq int    `json:"seq"`
	Msg string `json:"msg"`
}

// ipcChild is the bench binary re-executed as the Go child: "sink N" or
// "echo", as bench/node/ipc_child.js, or "echo-ctx": echo, with the
// channel's Context watched as a child following its parent's life does.
func ipcChild(spec string) {
	ch, err := tether.ParentChannel()
	if err != nil {
		fatal(err)
	}
	mode, nstr, _ := cut(spec)
	n, _ := strconv.Atoi(nstr)
	if mode == "echo-ctx" {
		ctx, cancel := ch.Context(context.Background())
		defer cancel()
		_ = ctx // a real child would hand it to its work
		mode = "echo"
	}
	if mode == "echo" {
		for {
			m, err := ch.RecvRaw()
			if err != nil {
				return
			}
			if ch.SendRaw(m) != nil {
				return
			}
		}
	}
	var m ipcMsg
	for got := 0; got < n; got++ {
		if err := ch.Recv(&m); err != nil {
			fatal(err)
		}
	}
	if err := ch.Send("done"); err != nil {
		fatal(err)
	}
	_ = ch.Recv(nil) // until the parent closes
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// ipcRun starts the child (the bench binary, or node with the script) with a
// channel and times n messages one way or n round trips; a Go child echoing
// watches its Context if withCtx.
func ipcRun(nodeChild, oneway, withCtx bool, n int) (float64, string, error) {
	mode := "echo"
	switch {
	case oneway:
		mode = "sink"
	case withCtx:
		mode = "echo-ctx"
	}
	var c *tether.Cmd
	if nodeChild {
		node, err := exec.LookPath("node")
		if err != nil {
			return 0, "", err
		}
		c = tether.Command(node, filepath.Join(srcDir, "node", "ipc_child.js"), mode, strconv.Itoa(n))
	} else {
		exe, err := os.Executable()
		if err != nil {
			return 0, "", err
		}
		c = &tether.Cmd{Path: exe, Args: []string{"bench-ipc-child"},
			Env: append(os.Environ(), envIPCChild+"="+mode+" "+strconv.Itoa(n))}
	}
	c.IPC = true
	c.Stderr = tether.Inherit()
	p, err := c.Start(context.Background())
	if err != nil {
		return 0, "", err
	}
	defer p.Wait()
	defer p.Channel().Close()
	ch := p.Channel()
	t0 := time.Now()
	m := ipcMsg{Msg: "hello"}
	if oneway {
		for i := range n {
			m.Seq = i
			if err := ch.Send(m); err != nil {
				return 0, "", err
			}
		}
		var done string
		if err := ch.Recv(&done); err != nil || done != "done" {
			return 0, "", fmt.Errorf("child: %q, %v", done, err)
		}
	} else {
		for i := range n {
			m.Seq = i
			if err := ch.Send(m); err != nil {
				return 0, "", err
			}
			if err := ch.Recv(&m); err != nil {
				return 0, "", err
			}
		}
	}
	secs := time.Since(t0).Seconds()
	if err := ch.Close(); err != nil && !errors.Is(err, io.EOF) {
		return 0, "", err
	}
	return secs, "", nil
}

func benchIPC() {
	n := *ipcN
	for _, oneway := range []bool{true, false} {
		work, title, unit := n, "IPC, small messages one way", "msgs/s"
		if !oneway {
			work, title, unit = n/10, "IPC, round trips", "round trips/s"
		}
		mode := map[bool]string{true: "oneway", false: "roundtrip"}[oneway]
		cs := []contender{
			{"node↔node (fork)", func() (float64, string, error) {
				s, _, err := nodeScript2("ipc.js", mode, strconv.Itoa(work))
				return s, "", err
			}},
			{"tether go↔go", func() (float64, string, error) { return ipcRun(false, oneway, false, work) }},
			{"tether go↔node", func() (float64, string, error) { return ipcRun(true, oneway, false, work) }},
		}
		if !oneway {
			cs = append(cs, contender{"tether go↔go, child watching Context", func() (float64, string, error) {
				return ipcRun(false, false, true, work)
			}})
		}
		cs = append(cs, contender{"ceiling: raw socket → node (no Channel)", func() (float64, string, error) {
			return ipcCeiling(oneway, work)
		}})
		compareTo("node↔node (fork)", title, unit, float64(work), *rounds, cs)
	}
}

func nodeScript2(name string, args ...string) (float64, []string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return 0, nil, err
	}
	return external("node", append([]string{filepath.Join(srcDir, "node", name)}, args...)...)
}

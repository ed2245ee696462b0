package tether_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether"
	"github.com/tetherproc/tether/internal/testproc"
)

func registerIPCHelpers() {
	testproc.Register("ipc-echo", helperIPCEcho)
	testproc.Register("ipc-raw", helperIPCRaw)
	testproc.Register("ipc-env", helperIPCEnv)
	testproc.Register("ipc-none", helperIPCNone)
	testproc.Register("ipc-stop", helperIPCStop)
	testproc.Register("args", helperArgs)
	testproc.Register("extra-files", helperExtraFiles)
	testproc.Register("ipc-orphan", helperIPCOrphan)
	testproc.Register("ipc-send", helperIPCSend)
	testproc.Register("list-fds", helperListFDs)
}

func parentChannel() *tether.Channel {
	ch, err := tether.ParentChannel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ParentChannel:", err)
		os.Exit(2)
	}
	return ch
}

// helperIPCEcho sends "ready", then echoes every message until EOF; on the
// message "disconnect" it closes its end first. It exits 0 at the end.
func helperIPCEcho([]string) {
	ch := parentChannel()
	if err := ch.Send("ready"); err != nil {
		os.Exit(3)
	}
	for {
		m, err := ch.RecvRaw()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "recv:", err)
			os.Exit(4)
		}
		if string(m) == `"disconnect"` {
			_ = ch.Close()
			return
		}
		if err := ch.SendRaw(m); err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
			os.Exit(5)
		}
	}
}

// helperIPCRaw writes its argument to the channel descriptor as it is, then
// exits: bad input for the parent's Channel.
func helperIPCRaw(args []string) {
	s := args[0]
	fd, _ := strconv.Atoi(os.Getenv("NODE_CHANNEL_FD"))
	f := rawChannel(fd)
	if len(args) > 1 { // a message of args[1] bytes of x, newline-terminated
		n, _ := strconv.Atoi(args[1])
		s += `"` + strings.Repeat("x", n-2) + "\"\n" + `"after big"` + "\n"
	}
	if _, err := io.WriteString(f, s); err != nil {
		os.Exit(3)
	}
}

// helperIPCEnv reports what a child with a channel sees: the variables after
// ParentChannel, and the descriptors a grandchild inherits.
func helperIPCEnv([]string) {
	ch := parentChannel()
	defer ch.Close()
	fmt.Printf("env %q %q\n", os.Getenv("NODE_CHANNEL_FD"), os.Getenv("NODE_CHANNEL_SERIALIZATION_MODE"))
	path, argv, env := testproc.Command("list-fds")
	c := exec.Command(path, argv[1:]...)
	c.Args[0] = argv[0]
	c.Env = env
	c.Stdout = os.Stdout
	if err := c.Run(); err != nil {
		os.Exit(2)
	}
	again, err := tether.ParentChannel()
	fmt.Println("same", again == ch, err)
}

// helperListFDs prints "fds" and the descriptors it has open, sorted.
func helperListFDs([]string) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		os.Exit(2)
	}
	var fds []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			fds = append(fds, n)
		}
	}
	fmt.Println("sockets", fds)
}

// helperIPCNone calls ParentChannel and prints what it said.
func helperIPCNone([]string) {
	_, err := tether.ParentChannel()
	fmt.Println(errors.Is(err, tether.ErrNoChannel), err)
}

// helperIPCStop waits for messages; "shutdown" makes it print "bye" and exit
// 0, unless its argument is "deaf".
func helperIPCStop(args []string) {
	ch := parentChannel()
	_ = ch.Send("ready")
	for {
		var m any
		if err := ch.Recv(&m); err != nil {
			os.Exit(4)
		}
		if m == "shutdown" && (len(args) == 0 || args[0] != "deaf") {
			fmt.Println("bye")
			os.Exit(0)
		}
		if m == "shutdown" {
			_ = ch.Send("ignored") // deaf: says it read it, and goes on
		}
	}
}

// helperIPCOrphan blocks until its channel's context ends, prints the cause
// and exits 3.
func helperIPCOrphan([]string) {
	ch := parentChannel()
	ctx, cancel := ch.Context(context.Background())
	defer cancel()
	_ = ch.Send("ready")
	<-ctx.Done()
	fmt.Println("cause:", context.Cause(ctx))
	os.Exit(3)
}

// helperIPCSend sends N messages {"i": i} and exits at once.
func helperIPCSend(args []string) {
	ch := parentChannel()
	n, _ := strconv.Atoi(args[0])
	for i := range n {
		if err := ch.Send(map[string]int{"i": i}); err != nil {
			os.Exit(3)
		}
	}
	if err := ch.Flush(); err != nil { // Send only queues: exit after Flush
		os.Exit(4)
	}
}

// recvBounded receives one message into v, failing the test after d.
func recvBounded(t testing.TB, ch *tether.Channel, v any, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := ch.RecvContext(ctx, v)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no message after %v", d)
	}
	return err
}

// startIPC starts c and closes its channel when the test ends.
func startIPC(t testing.TB, c *tether.Cmd) (*tether.Process, *tether.Channel) {
	t.Helper()
	p := start(t, c)
	ch := p.Channel()
	t.Cleanup(func() { _ = ch.Close() }) // best effort: closed already in most tests
	return p, ch
}

func ipcCmd(name string, args ...string) *tether.Cmd {
	c := helperCmd(name, args...)
	c.IPC = true
	return c
}

// testValues are the values every interop test sends, from testdata.
func testValues(t testing.TB) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/ipc/values.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []json.RawMessage
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// echoRoundTrip sends every test value, a 1 MiB string and 10,000 small
// messages to an echoing child and checks each echo, in order.
func echoRoundTrip(t *testing.T, ch *tether.Channel) {
	var ready string
	if err := recvBounded(t, ch, &ready, 10*time.Second); err != nil || ready != "ready" {
		t.Fatalf("first message %q, %v; want ready", ready, err)
	}
	var want []any
	for _, raw := range testValues(t) {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	want = append(want, strings.Repeat("é", 1<<19)) // 1 MiB of UTF-8
	const n = 10000
	for i := range n {
		want = append(want, map[string]any{"seq": float64(i)})
	}
	// Send from one goroutine while receiving here: neither side may wait
	// for the other (the echo blocks when we stop reading).
	sendErr := make(chan error, 1)
	go func() { // ends when every value is sent or a send fails
		for _, v := range want {
			if err := ch.Send(v); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for i, w := range want {
		var got any
		if err := recvBounded(t, ch, &got, 20*time.Second); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("message %d: got %.80v, want %.80v", i, got, w)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("send: %v", err)
	}
}

func TestChannelGoToGo(t *testing.T) {
	t.Parallel()
	for _, ending := range []string{"parent-closes", "child-closes"} {
		t.Run(ending, func(t *testing.T) {
			t.Parallel()
			p, ch := startIPC(t, ipcCmd("ipc-echo"))
			echoRoundTrip(t, ch)
			if ending == "parent-closes" {
				if err := ch.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := ch.Send("disconnect"); err != nil {
					t.Fatal(err)
				}
				if err := recvBounded(t, ch, nil, 10*time.Second); !errors.Is(err, io.EOF) {
					t.Fatalf("Recv after the child closed: %v, want io.EOF", err)
				}
				select {
				case <-ch.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("Done not closed after EOF")
				}
				if err := ch.Send("late"); !errors.Is(err, syscall.EPIPE) {
					t.Fatalf("Send after EOF: %v, want EPIPE", err)
				}
			}
			// Unlike Node 20 after disconnect() (nodejs/node#65646), the
			// process closes once the child exits.
			waitDone(t, p, 10*time.Second)
			if st, _ := p.Wait(); !st.Success() {
				t.Fatalf("child: %v", st)
			}
			if err := ch.Send("after close"); err == nil {
				t.Fatal("Send after the end succeeded")
			}
		})
	}
}

func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed; .ci/run installs it")
		}
		t.Skip("node is not installed")
	}
	return node
}

func TestChannelNodeChild(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	c := tether.Command(node, "testdata/ipc/child.js")
	c.Containment = helperCmd("echo").Containment
	c.IPC = true
	c.Stderr = tether.Pipe()
	p, ch := startIPC(t, c)
	var stderr bytes.Buffer
	stderrDone := make(chan struct{})
	go func() { // ends at the stderr pipe's EOF
		_, _ = io.Copy(&stderr, p.Stderr())
		close(stderrDone)
	}()
	defer func() {
		<-stderrDone
		if t.Failed() {
			t.Logf("node stderr:\n%s", stderr.String())
		}
	}()

	t.Run("values", func(t *testing.T) { echoRoundTrip(t, ch) })

	t.Run("internal-messages", func(t *testing.T) {
		if err := ch.Send("internal"); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := recvBounded(t, ch, &m, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if m["after"] != "internal" {
			t.Fatalf("got %v: an internal message was delivered", m)
		}
		err := ch.Send(map[string]any{"cmd": "NODE_HANDLE", "type": "net.Native"})
		if !errors.Is(err, tether.ErrInternalMessage) {
			t.Fatalf("Send of a NODE_ command: %v, want ErrInternalMessage", err)
		}
		if err := ch.SendRaw(json.RawMessage(`{"x":1, "cmd" : "NODE_X"}`)); !errors.Is(err, tether.ErrInternalMessage) {
			t.Fatalf("SendRaw of a NODE_ command: %v, want ErrInternalMessage", err)
		}
	})

	t.Run("handle-refused", func(t *testing.T) {
		if err := ch.Send("handle"); err != nil {
			t.Fatal(err)
		}
		// Node holds back what follows a handle until the receiver
		// answers; tether answers NODE_HANDLE_NACK (the descriptor was
		// dropped) and never delivers the handle's message.
		var m map[string]any
		if err := recvBounded(t, ch, &m, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if m["after"] != "handle" {
			t.Fatalf("got %v, want {after: handle}", m)
		}
	})

	t.Run("many-in-order", func(t *testing.T) {
		const n = 10000
		if err := ch.Send(map[string]int{"count": n}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			var m struct{ I int }
			if err := recvBounded(t, ch, &m, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if m.I != i {
				t.Fatalf("message %d has i=%d", i, m.I)
			}
		}
	})

	t.Run("parent-disconnects", func(t *testing.T) {
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		waitDone(t, p, 10*time.Second)
		if st, _ := p.Wait(); !st.Success() {
			t.Fatalf("node child after disconnect: %v", st)
		}
	})
}

func TestChannelNodeParent(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"fork", "spawn"} {
		for _, ending := range []string{"disconnect-parent", "disconnect-child"} {
			t.Run(mode+"/"+ending, func(t *testing.T) {
				t.Parallel()
				c := tether.Command(node, "testdata/ipc/parent.js", mode, exe, ending)
				c.Env = testproc.Env("ipc-echo") // registers the Go child for the leak check
				c.Containment = helperCmd("echo").Containment
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				out, err := c.CombinedOutput(ctx)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				var res struct {
					Echoed     int
					Disconnect bool
					Exit       struct{ Code int }
				}
				lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
				if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if want := len(testValues(t)) + 1 + 10000; res.Echoed != want || !res.Disconnect || res.Exit.Code != 0 {
					t.Fatalf("got %+v, want %d echoed, disconnect, exit 0\n%s", res, want, out)
				}
			})
		}
	}
}

func TestChannelBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		raw  string
		big  string // bytes of a message sent after raw
		want []string
	}{
		{"malformed", "{\"a\":1\n\"ok\"\n", "", []string{"err:unexpected end of JSON", `"ok"`, "EOF"}},
		{"invalid-utf8", "\"\xff\xfe\"\n\"ok\"\n", "", []string{"err:not valid UTF-8", `"ok"`, "EOF"}},
		{"cut-short", "\"ok\"\n{\"half\":", "", []string{`"ok"`, "err:unexpected EOF", "EOF"}},
		{"bad-token", "{a}\n\"ok\"\n", "", []string{"err:invalid character", `"ok"`, "EOF"}},
		{"empty-line", "\n\"ok\"\n", "", []string{"err:unexpected end of JSON", `"ok"`, "EOF"}},
		{"too-large", "", "70000", []string{"err:over the size limit", `"after big"`, "EOF"}},
		{"nothing", ``, "", []string{"EOF"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "invalid-utf8" {
				skipOnWindows(t, "the bytes go through the child's arguments, UTF-16 there")
			}
			args := []string{tc.raw}
			if tc.big != "" {
				args = append(args, tc.big)
			}
			p, ch := startIPC(t, ipcCmd("ipc-raw", args...))
			ch.SetMaxMessageSize(65536)
			for i, want := range tc.want {
				var v any
				err := recvBounded(t, ch, &v, 10*time.Second)
				got := ""
				switch {
				case errors.Is(err, io.EOF):
					got = "EOF"
				case err != nil:
					var me *tether.MessageError
					if !errors.As(err, &me) {
						t.Fatalf("item %d: %v is not a *MessageError", i, err)
					}
					got = "err:" + err.Error()
				default:
					b, _ := json.Marshal(v)
					got = string(b)
				}
				if !strings.HasPrefix(got, want) && !(strings.HasPrefix(want, "err:") && strings.Contains(got, want[4:])) {
					t.Fatalf("item %d: got %q, want %q", i, got, want)
				}
			}
			waitDone(t, p, 10*time.Second)
		})
	}
}

func TestChannelChildSide(t *testing.T) {
	t.Parallel()
	t.Run("env-and-cloexec", func(t *testing.T) {
		t.Parallel()
		skipOnWindows(t, "the grandchild lists its sockets in /proc (the handle is made non-inheritable instead)")
		c := ipcCmd("ipc-env")
		out, err := c.Output(context.Background())
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := "env \"\" \"\"\nsockets []\nsame true <nil>\n"
		if string(out) != want {
			t.Fatalf("got %q, want %q", out, want)
		}
	})
	t.Run("no-channel", func(t *testing.T) {
		t.Parallel()
		out, err := helperCmd("ipc-none").Output(context.Background())
		if err != nil || !strings.HasPrefix(string(out), "true tether: no IPC channel") {
			t.Fatalf("got %q, %v", out, err)
		}
	})
	t.Run("advanced-refused", func(t *testing.T) {
		t.Parallel()
		c := helperCmd("ipc-none")
		c.Env = append(c.Env, "NODE_CHANNEL_FD=0", "NODE_CHANNEL_SERIALIZATION_MODE=advanced")
		out, err := c.Output(context.Background())
		if err != nil || !strings.Contains(string(out), `"advanced" is not supported`) {
			t.Fatalf("got %q, %v", out, err)
		}
	})
	t.Run("parent-gone-cancels", func(t *testing.T) {
		t.Parallel()
		c := ipcCmd("ipc-orphan")
		c.Stdout = tether.Pipe()
		p, ch := startIPC(t, c)
		if err := recvBounded(t, ch, nil, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		_ = ch.Close()
		out, _ := io.ReadAll(p.Stdout())
		st, _ := p.Wait()
		if st.Code != 3 || string(out) != "cause: EOF\n" {
			t.Fatalf("child: %v, %q", st, out)
		}
	})
	t.Run("messages-outlive-exit", func(t *testing.T) {
		t.Parallel()
		const n = 5000 // more than the socket buffer: the child blocks until we read
		p, ch := startIPC(t, ipcCmd("ipc-send", strconv.Itoa(n)))
		for i := range n {
			var m struct{ I int }
			if err := recvBounded(t, ch, &m, 10*time.Second); err != nil || m.I != i {
				t.Fatalf("message %d: %+v, %v", i, m, err)
			}
		}
		waitDone(t, p, 10*time.Second)
		if err := recvBounded(t, ch, nil, 10*time.Second); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last message: %v, want io.EOF", err)
		}
	})
	t.Run("never-asked-for", func(t *testing.T) {
		t.Parallel()
		// Nobody calls Channel: its descriptor is released at close (the
		// leak check would see it otherwise).
		p := start(t, ipcCmd("ipc-send", "10"))
		waitDone(t, p, 10*time.Second)
	})
	t.Run("asked-for-after-close", func(t *testing.T) {
		t.Parallel()
		// A child that sends and exits at once can close before Start's
		// caller asks for the channel: what it sent is still there (it
		// used to be discarded, and Recv returned ErrChannelClosed).
		p := start(t, ipcCmd("ipc-send", "10"))
		waitDone(t, p, 10*time.Second)
		ch := p.Channel()
		defer ch.Close()
		for i := range 10 {
			var m struct{ I int }
			if err := recvBounded(t, ch, &m, 10*time.Second); err != nil || m.I != i {
				t.Fatalf("message %d: %+v, %v", i, m, err)
			}
		}
		if err := recvBounded(t, ch, nil, 10*time.Second); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last message: %v, want io.EOF", err)
		}
	})
	t.Run("read-after-done", func(t *testing.T) {
		t.Parallel()
		p, ch := startIPC(t, ipcCmd("ipc-send", "100"))
		waitDone(t, p, 10*time.Second)
		for i := range 100 {
			var m struct{ I int }
			if err := recvBounded(t, ch, &m, 10*time.Second); err != nil || m.I != i {
				t.Fatalf("message %d: %+v, %v", i, m, err)
			}
		}
		if err := recvBounded(t, ch, nil, 10*time.Second); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last message: %v, want io.EOF", err)
		}
	})
}

func TestChannelStopMessage(t *testing.T) {
	t.Parallel()
	for _, deaf := range []bool{false, true} {
		name := "obeys"
		if deaf {
			name = "deaf-then-signal"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var args []string
			if deaf {
				args = []string{"deaf"}
			}
			c := ipcCmd("ipc-stop", args...)
			c.StopMessage = "shutdown"
			c.StopTimeout = 300 * time.Millisecond
			c.Stdout = tether.Pipe()
			var mu sync.Mutex
			var kinds []string
			c.Observer = func(e tether.Event) {
				mu.Lock()
				kinds = append(kinds, e.Kind.String())
				mu.Unlock()
			}
			p, ch := startIPC(t, c)
			if err := recvBounded(t, ch, nil, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(p.Stdout())
			st, _ := p.Wait()
			mu.Lock()
			defer mu.Unlock()
			got := strings.Join(kinds, ",")
			if deaf {
				if !endedByStopSignal(st) || got != "spawn,stop-message,signal,exit,close" {
					t.Fatalf("deaf child: %v, events %s", st, got)
				}
			} else if !st.Success() || string(out) != "bye\n" || got != "spawn,stop-message,exit,close" {
				t.Fatalf("child: %v, %q, events %s", st, out, got)
			}
		})
	}
}

func TestChannelExtraFiles(t *testing.T) {
	t.Parallel()
	skipOnWindows(t, "the child writes to descriptor 3, a C runtime descriptor there, which a Go child has no runtime to find")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := ipcCmd("extra-files")
	c.ExtraFiles = []*os.File{w}
	p, ch := startIPC(t, c)
	_ = w.Close()
	var got string
	if err := recvBounded(t, ch, &got, 10*time.Second); err != nil || got != "NODE_CHANNEL_FD=4" {
		t.Fatalf("got %q, %v", got, err)
	}
	line := readLine(t, bufio.NewReader(r), 10*time.Second)
	if line != "fd 3" {
		t.Fatalf("fd 3 carried %q", line)
	}
	waitDone(t, p, 10*time.Second)
}

// helperExtraFiles writes "fd 3" to descriptor 3 and sends where its channel
// is on the channel.
func helperExtraFiles([]string) {
	v := "NODE_CHANNEL_FD=" + os.Getenv("NODE_CHANNEL_FD")
	ch := parentChannel()
	if _, err := os.NewFile(3, "extra").WriteString("fd 3\n"); err != nil {
		os.Exit(2)
	}
	if err := ch.Send(v); err != nil {
		os.Exit(3)
	}
	_ = ch.Close() // flushes
}

// helperArgs prints its arguments and the variable TETHER_TEST_BYTES, quoted.
func helperArgs(args []string) {
	fmt.Printf("%q %q\n", args, os.Getenv("TETHER_TEST_BYTES"))
}

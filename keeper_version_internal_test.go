//go:build linux || darwin

package tether

import (
	"encoding/binary"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tetherproc/tether/internal/keeper"
)

// TestKeeperOfAnotherVersion: a keeper whose hello names another Version,
// or whose first frame does not even decode here (the JSON of versions 1
// and 2), is refused with the error that says so — not taken for a keeper
// gone, and not waited for. (On macOS the keeper is the binary at the
// program's path, which an upgrade may have replaced.)
func TestKeeperOfAnotherVersion(t *testing.T) {
	frame := func(m keeper.Msg) []byte {
		b, err := keeper.AppendFrame(nil, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// What a keeper of version 2 sent: encoding/json's form of its Msg.
	v2 := []byte(`{"op":"hello","hello":{"Version":2,"Cgroup":"/sys/fs/cgroup/tether.keeper.1"}}`)
	v2 = append(binary.BigEndian.AppendUint32(nil, uint32(len(v2))), append([]byte{0}, v2...)...)
	for _, c := range []struct {
		name    string
		first   []byte
		wantErr string
	}{
		{"version 2, JSON", v2, errKeeperVersion},
		{"another version", frame(keeper.Msg{Op: keeper.OpHello, Hello: &keeper.Hello{Version: keeper.Version + 1}}), errKeeperVersion},
		{"no hello in the hello", frame(keeper.Msg{Op: keeper.OpHello}), errKeeperVersion},
		{"this version", frame(keeper.Msg{Op: keeper.OpHello, Hello: &keeper.Hello{Version: keeper.Version}}), ""},
	} {
		// The hello is read by readLoop, or by getKeeperAt's await, with
		// readLoop held back until it returned.
		for _, reader := range []string{"readLoop", "await"} {
			t.Run(c.name+"/"+reader, func(t *testing.T) {
				k, theirs := standInKeeper(t, reader == "readLoop")
				if err := keeper.SendFrame(theirs, c.first, nil); err != nil {
					t.Fatal(err)
				}
				helloed := make(chan struct{})
				go func() { // ends when the hello came, or the stream ended
					if reader == "await" {
						await(k, k.hello)
					} else {
						<-k.hello
					}
					close(helloed)
				}()
				select {
				case <-helloed:
				case <-time.After(10 * time.Second):
					t.Fatal("no hello, and no error, after 10 s")
				}
				if k.helloErr != c.wantErr {
					t.Fatalf("the hello's error: %q, want %q", k.helloErr, c.wantErr)
				}
			})
		}
	}
}

// standInKeeper is a keeper client whose keeper is a stand-in: this binary,
// which exits at once (keeper.ProbeEnv; under -race, without the race
// runtime's second of sleep at exit), and whose end of the socket is theirs,
// for the test to write frames to. readLoop runs from the start, or else
// from the test's end; there the stand-in's end closes, and readLoop reaps
// it as it would the keeper.
func standInKeeper(t *testing.T, readLoop bool) (*keeperClient, int) {
	t.Helper()
	fds, err := socketpairCloexec()
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "keeper")
	conn, err := net.FileConn(ours)
	_ = ours.Close()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := forkOwned(func() (int, error) {
		return syscall.ForkExec(exe, []string{"tether-keeper"}, &syscall.ProcAttr{Env: []string{keeper.ProbeEnv + "=1", "GORACE=atexit_sleep_ms=0"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	k := newKeeperClient(conn.(*net.UnixConn), pid)
	if readLoop {
		go k.readLoop() // owner: the test; ends at the socket's end, below
	}
	t.Cleanup(func() {
		_ = syscall.Close(fds[1]) // the keeper's end: its EOF ends readLoop
		if !readLoop {
			go k.readLoop() // as above
		}
		<-k.done
	})
	return k, fds[1]
}

// A stop the keeper reports just before the exit (a stopped child
// SIGKILLed) reaches the Observer before Wait returns: the exit report
// waits behind the job events of its process still to be reported, so no
// event comes after EventClose.
func TestKeeperJobEventsBeforeExit(t *testing.T) {
	for i := range 20 {
		k, theirs := standInKeeper(t, false)
		reported := make(chan struct{})
		kp := &keptProc{k: k, id: 1, exit: make(chan *keeper.ExitReport, 1), onJob: func(bool, syscall.Signal) {
			time.Sleep(time.Millisecond) // an Observer at work: the scenario, not a wait for a result
			close(reported)
		}}
		k.mu.Lock()
		k.procs[kp.id] = kp
		k.mu.Unlock()
		var b []byte
		for _, m := range []keeper.Msg{
			{Op: keeper.OpStopped, ID: kp.id, Sig: int(syscall.SIGSTOP)},
			{Op: keeper.OpExited, ID: kp.id, Exited: &keeper.ExitReport{Signal: int(syscall.SIGKILL)}},
		} {
			var err error
			if b, err = keeper.AppendFrame(b, m, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := keeper.SendFrame(theirs, b, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kp.wait(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-reported:
		default:
			t.Fatalf("run %d: the exit came before the stop was reported", i)
		}
	}
}

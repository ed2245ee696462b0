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
		t.Run(c.name, func(t *testing.T) {
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
			// The keeper's stand-in: this binary, which exits at once
			// (keeper.ProbeEnv; under -race, without the race runtime's
			// second of sleep at exit); readLoop reaps it as it would the
			// keeper.
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
			go k.readLoop() // owner: this test; ends at the socket's end, below
			defer func() {
				_ = syscall.Close(fds[1]) // the keeper's end: its EOF ends readLoop
				<-k.done
			}()
			if err := keeper.SendFrame(fds[1], c.first, nil); err != nil {
				t.Fatal(err)
			}
			select {
			case <-k.hello:
			case <-time.After(10 * time.Second):
				t.Fatal("no hello, and no error, after 10 s")
			}
			if k.helloErr != c.wantErr {
				t.Fatalf("the hello's error: %q, want %q", k.helloErr, c.wantErr)
			}
		})
	}
}

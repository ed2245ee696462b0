//go:build linux || darwin

package keeper

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullSpawn is a spawn with every field set, bytes that are not UTF-8 in
// every string, empty strings among the elements, and integers at their
// types' ends.
func fullSpawn() *Spawn {
	return &Spawn{
		Path:        "/opt/caf\xe9/bin/x",
		Argv:        []string{"x", "", "\xff\xfe", "ok", ""},
		Env:         []string{"A=1", "B=", "", "C=\x80x", "D=" + strings.Repeat("d", 300)},
		Dir:         "/home/\xc3(",
		StopSignal:  15,
		StopTimeout: math.MaxInt64,
		Cgroup:      true,
		Foreground:  true,
		MemoryMax:   math.MinInt64,
		PidsMax:     math.MaxInt64,
		Ignored:     math.MaxUint64,
		Holes:       []int{3, 5, 200, -1},
	}
}

// allFields is a Msg of op with every payload struct present and every
// field set.
func allFields(op Op) Msg {
	return Msg{
		Op:    op,
		ID:    math.MaxUint64,
		Sig:   -9,
		Spawn: fullSpawn(),
		Tree:  &TreeStop{Cgroup: "tree.\xff7", Sig: 15, Grace: -time.Second},
		Hello: &Hello{Version: Version, Cgroup: "/sys/fs/cgroup/x", CgroupErr: "no \xfe", Err: "cannot work",
			Controllers: map[string]string{"pids": "not delegated", "memory": "", "": "empty key", "\xff": "\x00"}},
		Spawned: &SpawnResult{PID: math.MaxInt32, Errno: int(syscall.EMFILE), Err: "failed"},
		Exited: &ExitReport{PID: 1, Code: -1, Signal: 9, Core: true, Utime: math.MinInt64, Stime: 1,
			MaxRSS: math.MaxInt64, Err: "gone"},
	}
}

// protocolMsgs are the messages the two ends send (see the protocol), one
// or more of each op.
func protocolMsgs() []Msg {
	return []Msg{
		{Op: OpSpawn, ID: 1, Spawn: fullSpawn()},
		{Op: OpSpawn, ID: 2, Spawn: &Spawn{Path: "/bin/true", Argv: []string{"true"}, Dir: "/"}},
		{Op: OpSignal, ID: 3, Sig: 2},
		{Op: OpSweep, ID: 4},
		{Op: OpRelease, ID: 5},
		{Op: OpShutdown},
		{Op: OpTree, Tree: &TreeStop{Cgroup: "tree.12", Sig: 15, Grace: 10 * time.Second}},
		{Op: OpBye},
		{Op: OpHello, Hello: &Hello{Version: Version, Cgroup: "/sys/fs/cgroup/k", Controllers: map[string]string{"memory": "", "pids": "not delegated"}}},
		{Op: OpHello, Hello: &Hello{Version: Version, CgroupErr: "cgroups are Linux only"}},
		{Op: OpHello, Hello: &Hello{Version: Version, Err: "/proc is another namespace's"}},
		{Op: OpSpawned, ID: 6, Spawned: &SpawnResult{PID: 4242}},
		{Op: OpSpawned, ID: 7, Spawned: &SpawnResult{Errno: int(syscall.ENOENT)}},
		{Op: OpSpawned, ID: 8, Spawned: &SpawnResult{}}, // present, if empty: readLoop needs it non-nil
		{Op: OpExited, ID: 9, Exited: &ExitReport{PID: 4242, Signal: 9, Core: true, Utime: 1e6, Stime: 2e6, MaxRSS: 1 << 20}},
		{Op: OpExited, ID: 10, Exited: &ExitReport{}},
		{Op: OpStopped, ID: 11, Sig: 20},
		{Op: OpContinued, ID: 12},
		{Op: OpEnding},
	}
}

func mustEncode(t testing.TB, m Msg) []byte {
	t.Helper()
	b, err := appendMsg(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCodecRoundTrip: every message decodes to what was encoded, bytes as
// they were sent.
func TestCodecRoundTrip(t *testing.T) {
	msgs := protocolMsgs()
	for op := OpSpawn; op.valid(); op++ {
		msgs = append(msgs, allFields(op))
	}
	if n := len(opNames) - 1; len(msgs) < 2*n {
		t.Fatalf("%d messages for %d ops", len(msgs), n)
	}
	for _, m := range msgs {
		got, err := decodeMsg(mustEncode(t, m))
		if err != nil {
			t.Fatalf("%v: %v", m.Op, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%v:\n got %#v\nwant %#v", m.Op, got, m)
		}
	}
}

// TestCodecEmpty: empty lists and maps decode as nil (the payload has one
// form for both, and nothing means another thing by either), and zero
// structs as present.
func TestCodecEmpty(t *testing.T) {
	m := Msg{Op: OpSpawn, Spawn: &Spawn{Argv: []string{}, Env: []string{}, Holes: []int{}}, Hello: &Hello{Controllers: map[string]string{}}, Tree: &TreeStop{}}
	got, err := decodeMsg(mustEncode(t, m))
	if err != nil {
		t.Fatal(err)
	}
	want := Msg{Op: OpSpawn, Spawn: &Spawn{}, Hello: &Hello{}, Tree: &TreeStop{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

// TestCodecSpawnLayout holds the payload to the layout the protocol's
// documentation gives, byte for byte, for a peer written from it.
func TestCodecSpawnLayout(t *testing.T) {
	m := Msg{Op: OpSpawn, ID: 300, Sig: -1, Spawn: &Spawn{
		Path: "/p", Argv: []string{"a", ""}, Env: []string{"E=\xff"}, Dir: "",
		StopSignal: 15, StopTimeout: 64, Foreground: true, MemoryMax: -65, PidsMax: 0, Ignored: 1 << 12, Holes: []int{3},
	}}
	want := []byte{
		1,          // Op: spawn
		0xac, 0x02, // ID 300: uvarint
		0x01,        // Sig -1: zigzag varint
		0x01,        // present: Spawn
		2, '/', 'p', // Path
		2, 1, 'a', 0, // Argv
		1, 3, 'E', '=', 0xff, // Env
		0,          // Dir
		30,         // StopSignal 15
		0x80, 0x01, // StopTimeout 64
		0, 1, // Cgroup, Foreground
		0x81, 0x01, // MemoryMax -65
		0,          // PidsMax
		0x80, 0x20, // Ignored 4096
		1, 6, // Holes [3]
	}
	if got := mustEncode(t, m); !bytes.Equal(got, want) {
		t.Fatalf("got  % x\nwant % x", got, want)
	}
}

// TestCodecMalformed: what a copy of this code never sends fails.
func TestCodecMalformed(t *testing.T) {
	ok := mustEncode(t, Msg{Op: OpSpawned, ID: 1, Spawned: &SpawnResult{PID: 2, Err: "x"}})
	hello := func(keys ...string) []byte {
		b := []byte{byte(OpHello), 0, 0, hasHello, 0, 0, 0, byte(len(keys))}
		for _, k := range keys {
			b = appendString(appendString(b, k), "")
		}
		return append(b, 0)
	}
	if _, err := decodeMsg(hello("a", "b")); err != nil {
		t.Fatalf("a well-formed hello: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":                  {},
		"op 0":                   {0, 0, 0, 0},
		"op 14":                  {14, 0, 0, 0},
		"JSON but a hello":       []byte(`{"op":"spawn","id":1,"spawn":{"Path":"/bin/true"}}`),
		"JSON, cut short":        []byte(`{"op":"hello","hello":{"Vers`),
		"bytes left over":        append(ok[:len(ok):len(ok)], 0),
		"unknown present bit":    {byte(OpBye), 0, 0, 1 << 5},
		"bool 2":                 {byte(OpExited), 0, 0, hasExited, 0, 0, 0, 2, 0, 0, 0, 0},
		"uvarint of 11 bytes":    {byte(OpRelease), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0},
		"uvarint over 64 bits":   {byte(OpRelease), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0},
		"string beyond the end":  {byte(OpSpawned), 0, 0, hasSpawned, 0, 0, 5, 'a'},
		"string of 2^64-1 bytes": {byte(OpSpawned), 0, 0, hasSpawned, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"count beyond the end":   {byte(OpSpawn), 0, 0, hasSpawn, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"map keys out of order":  hello("b", "a"),
		"map key twice":          hello("a", "a"),
		"map count beyond":       {byte(OpHello), 0, 0, hasHello, 0, 0, 0, 2, 0, 0},
	} {
		if m, err := decodeMsg(b); err == nil {
			t.Errorf("%s: decoded as %#v", name, m)
		}
	}
	if _, err := appendMsg(nil, &Msg{}); err == nil {
		t.Error("a Msg without an op encoded")
	}
}

// TestFrameEveryTruncation: a spawn frame cut anywhere in its payload,
// its header saying so, is ErrFrame, and its descriptors are closed.
func TestFrameEveryTruncation(t *testing.T) {
	frame, err := AppendFrame(nil, Msg{Op: OpSpawn, ID: 1, Spawn: fullSpawn()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	payload := frame[frameHeader:]
	for cut := range len(payload) {
		if _, err := decodeMsg(payload[:cut]); err == nil {
			t.Fatalf("the payload's first %d of %d bytes decoded", cut, len(payload))
		}
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			t.Fatal(err)
		}
		_ = syscall.Close(p[1])
		b := append(binary.BigEndian.AppendUint32(nil, uint32(cut)), 1)
		b = append(b, payload[:cut]...)
		sent := false
		r := NewFrameReader(func(buf, oob []byte) (int, int, int, error) {
			if sent {
				return 0, 0, 0, nil
			}
			sent = true
			return copy(buf, b), copy(oob, unix.UnixRights(p[0])), 0, nil
		})
		if _, fds, err := r.Next(); err != ErrFrame || fds != nil {
			t.Fatalf("cut at %d of %d: %v, %v; want ErrFrame", cut, len(payload), fds, err)
		}
		if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); err != syscall.EBADF {
			_ = syscall.Close(p[0])
			t.Fatalf("cut at %d: the frame's descriptor is still open (%v)", cut, err)
		}
	}
}

// FuzzDecodeMsg: no payload makes the decoder panic; one it accepts
// encodes again to the same message. (Its allocations are bounded by
// construction, not measured here: every count by the bytes left, and
// Argv's, Env's and Holes' by maxList.)
func FuzzDecodeMsg(f *testing.F) {
	for _, m := range protocolMsgs() {
		f.Add(mustEncode(f, m))
	}
	f.Add(mustEncode(f, allFields(OpSpawn)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMsg(b)
		// The frame reader too, with b as a frame's payload.
		frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), 0)
		frame = append(frame, b...)
		sent := false
		r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
			if sent {
				return 0, 0, 0, nil
			}
			sent = true
			return copy(p, frame), 0, 0, nil
		})
		if fm, _, ferr := r.Next(); (ferr == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(fm, m)) {
			t.Fatalf("decodeMsg: %v; the frame reader: %v", err, ferr)
		}
		if err != nil {
			return
		}
		again, err := appendMsg(nil, &m)
		if err != nil {
			t.Fatalf("decoded %#v, which does not encode: %v", m, err)
		}
		if len(again) > len(b) {
			t.Fatalf("decoded %d bytes, encoded again in %d", len(b), len(again))
		}
		m2, err := decodeMsg(again)
		if err != nil || !reflect.DeepEqual(m2, m) {
			t.Fatalf("decoded %#v, encoded again, decoded %#v, %v", m, m2, err)
		}
	})
}

// BenchmarkSpawnCodec: a spawn request encoded in a frame and decoded by
// the reader, with this process's environment, and with 8 KiB more.
func BenchmarkSpawnCodec(b *testing.B) {
	env := os.Environ()
	for _, extra := range []int{0, 8 << 10} {
		e := env
		if extra > 0 {
			e = append(e[:len(e):len(e)], "PAD="+strings.Repeat("p", extra))
		}
		size := 0
		for _, v := range e {
			size += len(v)
		}
		b.Run(fmt.Sprintf("env=%dvars,%dB", len(e), size), func(b *testing.B) {
			spec := Spawn{Path: "/usr/bin/true", Argv: []string{"true", "--flag", "arg"}, Env: e, Dir: "/home/user/project",
				StopSignal: 15, StopTimeout: 10 * time.Second, Holes: []int{3}, Ignored: 1 << 12}
			var frame []byte
			r := NewFrameReader(func(p, oob []byte) (int, int, int, error) {
				return copy(p, frame), 0, 0, nil
			})
			b.ReportAllocs()
			for b.Loop() {
				var err error
				frame, err = AppendFrame(nil, Msg{Op: OpSpawn, ID: 1, Spawn: &spec}, 0)
				if err != nil {
					b.Fatal(err)
				}
				m, _, err := r.Next()
				if err != nil || len(m.Spawn.Env) != len(e) {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestHelloIsJSONOfEveryVersion: the hello's payload is the JSON of
// versions 1 and 2, so that a parent of version 2 reads a version 3
// keeper's Version (and refuses it by name), and this version reads theirs.
func TestHelloIsJSONOfEveryVersion(t *testing.T) {
	b, err := AppendFrame(nil, Msg{Op: OpHello, Hello: &Hello{Version: Version, Cgroup: "/sys/fs/cgroup/k",
		Controllers: map[string]string{"pids": ""}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What version 2's reader did: encoding/json into its Msg, whose Op
	// was a string.
	var v2 struct {
		Op    string `json:"op"`
		Hello *struct {
			Version int
			Cgroup  string
		} `json:"hello"`
	}
	if err := json.Unmarshal(b[frameHeader:], &v2); err != nil || v2.Op != "hello" || v2.Hello == nil ||
		v2.Hello.Version != Version || v2.Hello.Cgroup != "/sys/fs/cgroup/k" {
		t.Fatalf("a version 2 parent reads %+v, %v from %s", v2, err, b[frameHeader:])
	}
	m, err := decodeMsg([]byte(`{"op":"hello","hello":{"Version":2,"Cgroup":"/sys/fs/cgroup/tether.keeper.1"}}`))
	if err != nil || m.Op != OpHello || m.Hello == nil || m.Hello.Version != 2 {
		t.Fatalf("a version 2 keeper's hello reads as %+v, %v", m, err)
	}
}

// TestCodecBounds: lists beyond maxList are refused, not allocated; a
// spawn with many holes, as tether run passing its descriptor 251 makes,
// is not (a bound of MaxFiles on Holes failed every such spawn).
func TestCodecBounds(t *testing.T) {
	holes := func(n int) []int {
		h := make([]int, n)
		for i := range h {
			h[i] = i + 3
		}
		return h
	}
	for name, s := range map[string]*Spawn{
		"holes": {Path: "/bin/true", Holes: holes(maxList + 1)},
		"argv":  {Path: "/bin/true", Argv: make([]string, maxList+1)},
	} {
		if m, err := decodeMsg(mustEncode(t, Msg{Op: OpSpawn, Spawn: s})); err == nil {
			t.Errorf("%s beyond the bound: decoded as %d holes, %d args", name, len(m.Spawn.Holes), len(m.Spawn.Argv))
		}
	}
	want := Msg{Op: OpSpawn, ID: 1, Spawn: &Spawn{Path: "/bin/echo", Holes: holes(247)}}
	if m, err := decodeMsg(mustEncode(t, want)); err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("a spawn with 247 holes: %v, %+v", err, m.Spawn)
	}
}

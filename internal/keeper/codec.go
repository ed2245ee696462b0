//go:build linux || darwin

package keeper

// The payload codec: a Msg in the binary form the package documentation
// describes (proto.go, "Payload"). It replaced JSON (Version 3): encoding
// and decoding a spawn with a 35-variable (1.3 KB) environment took 21 µs
// of CPU and 67 allocations on the path of every kept spawn (2.0 µs and 6
// now: BenchmarkSpawnCodec), and grew with the environment (79 µs with
// 9.5 KB; 6.8 µs now); JSON also could not carry bytes that are not UTF-8
// without base64.
//
// The decoder reads what a peer sent, which a bug or another version could
// make anything: it never panics, and bounds every length and count by the
// bytes left before it allocates (FuzzDecodeMsg).

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"time"
)

// The present byte's bits: which of Msg's payload structs follow.
const (
	hasSpawn byte = 1 << iota
	hasTree
	hasHello
	hasSpawned
	hasExited

	hasAll = hasSpawn | hasTree | hasHello | hasSpawned | hasExited
)

var (
	errShort = errors.New("keeper payload cut short")
	errOp    = errors.New("keeper payload of an unknown op")
	errValue = errors.New("keeper payload with a value out of range")
	errLeft  = errors.New("keeper payload with bytes left over")
)

// appendMsg appends m's payload to b.
func appendMsg(b []byte, m *Msg) ([]byte, error) {
	if !m.Op.valid() {
		return b, fmt.Errorf("keeper message of unknown op %d", uint8(m.Op))
	}
	var present byte
	for bit, p := range []bool{m.Spawn != nil, m.Tree != nil, m.Hello != nil, m.Spawned != nil, m.Exited != nil} {
		if p {
			present |= 1 << bit
		}
	}
	b = append(b, byte(m.Op))
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendVarint(b, int64(m.Sig))
	b = append(b, present)
	if s := m.Spawn; s != nil {
		b = appendString(b, s.Path)
		b = appendStrings(b, s.Argv)
		b = appendStrings(b, s.Env)
		b = appendString(b, s.Dir)
		b = binary.AppendVarint(b, int64(s.StopSignal))
		b = binary.AppendVarint(b, int64(s.StopTimeout))
		b = appendBool(b, s.Cgroup)
		b = appendBool(b, s.Foreground)
		b = binary.AppendVarint(b, s.MemoryMax)
		b = binary.AppendVarint(b, s.PidsMax)
		b = binary.AppendUvarint(b, s.Ignored)
		b = binary.AppendUvarint(b, uint64(len(s.Holes)))
		for _, h := range s.Holes {
			b = binary.AppendVarint(b, int64(h))
		}
	}
	if t := m.Tree; t != nil {
		b = appendString(b, t.Cgroup)
		b = binary.AppendVarint(b, int64(t.Sig))
		b = binary.AppendVarint(b, int64(t.Grace))
	}
	if h := m.Hello; h != nil {
		b = binary.AppendVarint(b, int64(h.Version))
		b = appendString(b, h.Cgroup)
		b = appendString(b, h.CgroupErr)
		b = binary.AppendUvarint(b, uint64(len(h.Controllers)))
		// Sorted: one encoding for one map, whatever Go's iteration order.
		for _, k := range slices.Sorted(maps.Keys(h.Controllers)) {
			b = appendString(b, k)
			b = appendString(b, h.Controllers[k])
		}
		b = appendString(b, h.Err)
	}
	if r := m.Spawned; r != nil {
		b = binary.AppendVarint(b, int64(r.PID))
		b = binary.AppendVarint(b, int64(r.Errno))
		b = appendString(b, r.Err)
	}
	if e := m.Exited; e != nil {
		b = binary.AppendVarint(b, int64(e.PID))
		b = binary.AppendVarint(b, int64(e.Code))
		b = binary.AppendVarint(b, int64(e.Signal))
		b = appendBool(b, e.Core)
		b = binary.AppendVarint(b, e.Utime)
		b = binary.AppendVarint(b, e.Stime)
		b = binary.AppendVarint(b, e.MaxRSS)
		b = appendString(b, e.Err)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// spawnSize is at least the length of the payload of a spawn of s, and
// not much more: the frame that carries the environment is written into one
// allocation rather than grown by append's doublings.
func spawnSize(s *Spawn) int {
	// The Msg's op and present bytes, Spawn's two bools, and the
	// integers: 10 bytes each at most.
	n := 4 + binary.MaxVarintLen64*(2+8+len(s.Holes)) + stringSize(s.Path) + stringSize(s.Dir)
	for _, l := range [][]string{s.Argv, s.Env} {
		for _, a := range l {
			n += stringSize(a)
		}
	}
	return n
}

func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

// uvarintSize is how many bytes binary.AppendUvarint writes for v.
func uvarintSize(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// decodeMsg decodes a payload appendMsg wrote, or fails.
func decodeMsg(b []byte) (Msg, error) {
	if len(b) == 0 {
		return Msg{}, errShort
	}
	if b[0] == '{' {
		return decodeHelloJSON(b)
	}
	m := Msg{Op: Op(b[0])}
	if !m.Op.valid() {
		return Msg{}, errOp
	}
	d := decoder{b: b, off: 1}
	m.ID = d.uint()
	m.Sig = d.int()
	present := d.byte()
	if present&^hasAll != 0 {
		d.fail(errValue)
	}
	if present&hasSpawn != 0 && d.err == nil {
		s := &Spawn{}
		s.Path = d.string()
		s.Argv = d.strings()
		s.Env = d.strings()
		s.Dir = d.string()
		s.StopSignal = d.int()
		s.StopTimeout = time.Duration(d.int64())
		s.Cgroup = d.bool()
		s.Foreground = d.bool()
		s.MemoryMax = d.int64()
		s.PidsMax = d.int64()
		s.Ignored = d.uint()
		// Holes are descriptor numbers left out, not descriptors sent:
		// tether run passing its descriptor 251 has some 240 (so MaxFiles
		// does not bound them).
		if n := d.count(1); n > maxList {
			d.fail(errValue)
		} else if n > 0 {
			s.Holes = make([]int, n)
			for i := 0; i < n && d.err == nil; i++ {
				s.Holes[i] = d.int()
			}
		}
		m.Spawn = s
	}
	if present&hasTree != 0 && d.err == nil {
		m.Tree = &TreeStop{Cgroup: d.string(), Sig: d.int(), Grace: time.Duration(d.int64())}
	}
	if present&hasHello != 0 && d.err == nil {
		h := &Hello{Version: d.int(), Cgroup: d.string(), CgroupErr: d.string()}
		if n := d.count(2); n > 0 {
			h.Controllers = make(map[string]string, min(n, 16))
			prev := ""
			for i := range n {
				k := d.string()
				if i > 0 && k <= prev {
					d.fail(errValue) // out of order, or twice
				}
				if d.err != nil {
					break
				}
				h.Controllers[k], prev = d.string(), k
			}
		}
		h.Err = d.string()
		m.Hello = h
	}
	if present&hasSpawned != 0 && d.err == nil {
		m.Spawned = &SpawnResult{PID: d.int(), Errno: d.int(), Err: d.string()}
	}
	if present&hasExited != 0 && d.err == nil {
		m.Exited = &ExitReport{PID: d.int(), Code: d.int(), Signal: d.int(), Core: d.bool(),
			Utime: d.int64(), Stime: d.int64(), MaxRSS: d.int64(), Err: d.string()}
	}
	if d.err == nil && d.off != len(b) {
		d.fail(errLeft)
	}
	if d.err != nil {
		return Msg{}, d.err
	}
	return m, nil
}

// decoder reads a payload from its start. After the first failure every
// read returns a zero value: the caller checks err once, at the end.
type decoder struct {
	b   []byte
	off int
	// s is b as a string, made at the first non-empty string read: the
	// strings decoded are slices of it, one allocation for a spawn's whole
	// environment rather than one a variable. (They keep the payload's
	// memory alive as long as any of them is: a spawn's for the fork, a
	// hello's, a reply's.)
	s   string
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.off = len(d.b) // nothing left: every later read fails at once
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) byte() byte {
	if d.left() < 1 {
		d.fail(errShort)
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(errValue)
	return false
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(varintErr(n))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) int64() int64 {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(varintErr(n))
		return 0
	}
	d.off += n
	return v
}

// varintErr is why binary.Uvarint or Varint read n <= 0 bytes.
func varintErr(n int) error {
	if n == 0 {
		return errShort
	}
	return errValue // more than 64 bits
}

// int reads an int64 that must fit Go's int (32 bits on some platforms).
func (d *decoder) int() int {
	v := d.int64()
	if int64(int(v)) != v {
		d.fail(errValue)
		return 0
	}
	return int(v)
}

// count reads a list's or a map's count, each of whose elements takes at
// least size bytes: a count the bytes left cannot hold fails before
// anything is allocated for it.
func (d *decoder) count(size int) int {
	n := d.uint()
	if n > uint64(d.left()/size) {
		d.fail(errShort)
		return 0
	}
	return int(n) // fits: at most the payload's length
}

func (d *decoder) string() string {
	n := d.count(1)
	if n == 0 {
		return ""
	}
	if d.s == "" {
		d.s = string(d.b)
	}
	d.off += n
	return d.s[d.off-n : d.off]
}

// maxList bounds Argv's, Env's and Holes' counts. An element takes a byte
// at least on the wire but 8 or 16 in memory: without a bound, a frame of
// empty strings (a bug, or another version) would cost 16 times its size,
// up to a GiB. A million is beyond any exec (Linux's ARG_MAX is at most
// 6 MiB for argv and environment together) and any descriptor number a
// child gets in practice.
const maxList = 1 << 20

// strings reads a list of strings; an empty one is nil.
func (d *decoder) strings() []string {
	n := d.count(1) // each string at least its length's byte
	if n > maxList {
		d.fail(errValue)
		return nil
	}
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		if l[i] = d.string(); d.err != nil {
			return nil
		}
	}
	return l
}

// helloJSON is the hello frame's payload, the same in every version (see
// the package documentation, "Payload"): encoding/json's form of the Msg of
// versions 1 and 2, whose Op was a string.
type helloJSON struct {
	Op    string `json:"op"`
	Hello *Hello `json:"hello,omitempty"`
}

// appendHelloJSON appends h's hello payload to b. (Bytes of h's strings
// that are not UTF-8, as a cgroup path could hold, become U+FFFD: JSON's.)
func appendHelloJSON(b []byte, h *Hello) ([]byte, error) {
	j, err := json.Marshal(helloJSON{Op: "hello", Hello: h})
	return append(b, j...), err
}

// decodeHelloJSON reads a hello payload; any other JSON is refused.
func decodeHelloJSON(b []byte) (Msg, error) {
	var j helloJSON
	if err := json.Unmarshal(b, &j); err != nil || j.Op != "hello" {
		return Msg{}, errOp
	}
	return Msg{Op: OpHello, Hello: j.Hello}, nil
}

// peekOpID reads a payload's op and ID where they read, whatever follows:
// what the keeper still answers when the rest does not decode.
func peekOpID(b []byte) (Op, uint64) {
	if len(b) == 0 || !Op(b[0]).valid() {
		return 0, 0
	}
	id, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return 0, 0
	}
	return Op(b[0]), id
}

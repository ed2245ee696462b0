//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tetherproc/tether/internal/oci"
	"golang.org/x/sys/unix"
)

// pid1Settle is how long after the program says it is ready the init's
// memory and threads are read: what a container that has just started
// costs, once the init's own start-up is over.
const pid1Settle = time.Second

// pid1Contender is an init that runs the stage program as its child, in a
// runc container's root filesystem of its own.
type pid1Contender struct {
	name  string
	files map[string]string // the rootfs, besides /stage
	argv  []string          // before the program's argv
	note  string
	err   error
}

// pid1Sample is one container's figures.
type pid1Sample struct {
	procs, rssKiB, threads int
	termToInit, termToRunc time.Duration
	detail                 string
}

// benchPID1 runs tether run, tini and dumb-init as PID 1 of a runc container
// around a program that sleeps and exits on SIGTERM, in interleaved rounds:
// the init's processes, their RSS and threads once the program runs, and
// SIGTERM to PID 1 (docker stop's first step: runc kill sends it to the
// init's pid) → PID 1 gone, and → runc run returned.
func benchPID1() {
	fmt.Printf("\nAs PID 1 of a runc container, around a program that exits on SIGTERM (median of %d rounds)\n\n", *rounds)
	runc, err := pid1Runc()
	if err != nil {
		fmt.Println("skipped:", err)
		return
	}
	dir := filepath.Join(workDir, "pid1")
	stage := buildStatic(dir, "stage", "./internal/oci/stage")
	cs := []*pid1Contender{
		{name: "tether run", files: map[string]string{"/tether": buildStatic(dir, "tether", "./cmd/tether")},
			argv: []string{"/tether", "run", "--"}, note: "CGO_ENABLED=0"},
		initContender("tini", []string{"tini-static", "tini"}, "--"),
		initContender("dumb-init", []string{"dumb-init"}),
	}
	samples := make([][]pid1Sample, len(cs))
	for r := range *rounds {
		for i, c := range cs {
			if c.err != nil {
				continue
			}
			s, err := pid1Round(runc, c, stage, fmt.Sprintf("tether-bench-%d-%d-%d", os.Getpid(), r, i))
			if err != nil {
				c.err = err
				continue
			}
			samples[i] = append(samples[i], s)
		}
	}
	var base pid1Sample
	for i, c := range cs {
		if c.name == "tini" && c.err == nil {
			base = pid1Median(samples[i])
		}
	}
	ratio := func(v, b float64) string {
		if b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", v/b)
	}
	fmt.Println("| init | processes | RSS | × tini | threads | × tini | SIGTERM → PID 1 gone | × tini | SIGTERM → runc run returned | note |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for i, c := range cs {
		if c.err != nil {
			fmt.Printf("| %s | – | – | – | – | – | – | – | – | skipped: %v |\n", c.name, c.err)
			continue
		}
		m := pid1Median(samples[i])
		fmt.Printf("| %s | %d | %d KiB | %s | %d | %s | %s | %s | %s | %s; %s |\n", c.name,
			m.procs, m.rssKiB, ratio(float64(m.rssKiB), float64(base.rssKiB)),
			m.threads, ratio(float64(m.threads), float64(base.threads)),
			ms(m.termToInit), ratio(float64(m.termToInit), float64(base.termToInit)),
			ms(m.termToRunc), c.note, samples[i][len(samples[i])-1].detail)
	}
	fmt.Printf("\nprocesses, RSS (VmRSS) and threads are the init's own: every process in the container but the\n" +
		"program, read from the host's /proc 1 s after the program is ready.\n")
}

// pid1Runc finds runc and checks that containers can be made only where
// they may: under this run's own cgroup.
func pid1Runc() (*oci.Runc, error) {
	path, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("runc is not installed (apt-get install runc)")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("runc needs root")
	}
	cg, err := oci.OwnCgroup()
	if err != nil {
		return nil, err
	}
	if jail == nil || cg != jail.Dir() {
		return nil, fmt.Errorf("this run is not in a cgroup of its own (it is in %s): containers would be made outside it", cg)
	}
	root := filepath.Join(workDir, "runc")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	return &oci.Runc{Path: path, Root: root, CgroupDir: cg}, nil
}

// initContender is the first of bins found, with what it loads: a dynamic
// binary brings its loader and libraries into the rootfs.
func initContender(name string, bins []string, args ...string) *pid1Contender {
	c := &pid1Contender{name: name}
	var path string
	for _, b := range bins {
		if p, err := exec.LookPath(b); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		c.err = fmt.Errorf("not installed (apt-get install %s)", name)
		return c
	}
	libs, err := oci.Libraries(path)
	if err != nil {
		c.err = err
		return c
	}
	c.files = map[string]string{"/" + name: path}
	for _, l := range libs {
		c.files[l] = l
	}
	c.argv = append([]string{"/" + name}, args...)
	c.note = filepath.Base(path) + ", static"
	if len(libs) > 0 {
		c.note = filepath.Base(path) + ", dynamic (its libc in the rootfs)"
	}
	return c
}

// buildStatic builds pkg (relative to the repository) with CGO_ENABLED=0.
func buildStatic(dir, name, pkg string) string {
	bin := filepath.Join(dir, name)
	b := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	b.Dir, b.Stderr = filepath.Dir(srcDir), os.Stderr
	b.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := b.Run(); err != nil {
		fatal(fmt.Errorf("build %s: %w", pkg, err))
	}
	return bin
}

func pid1Round(runc *oci.Runc, c *pid1Contender, stage, id string) (pid1Sample, error) {
	var s pid1Sample
	bundle := filepath.Join(workDir, "pid1", id)
	files := map[string]string{"/stage": stage}
	for k, v := range c.files {
		files[k] = v
	}
	err := oci.WriteBundle(bundle, oci.Bundle{Files: files, Args: append(append([]string(nil), c.argv...), "/stage", "term", "0"),
		CgroupsPath: "/runc-" + id})
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(bundle)
	run := runc.Command("run", "--bundle", bundle, id)
	out, err := run.StdoutPipe()
	if err != nil {
		return s, err
	}
	run.Stderr = run.Stdout
	if err := run.Start(); err != nil {
		return s, err
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }() // owner: this round; ends when runc run is reaped
	defer func() {
		// Whatever happened: the container goes (a no-op once runc run has
		// returned: it deletes its container itself).
		_, _ = oci.Output(runc.Command("delete", "-f", id), time.Minute) // best effort: usually gone already
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = run.Process.Kill()
		}
	}()
	// ready gets one value: nil once the program said so, or what the
	// container printed instead before its output ended.
	ready := make(chan error, 1)
	// Owner: this round; ends at EOF, once runc run and the container are gone.
	go func() {
		sc := bufio.NewScanner(out)
		var other []string
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, out) // to EOF: nothing else to read
				return
			}
			other = append(other, sc.Text())
		}
		ready <- fmt.Errorf("container ended before the program was ready, printing %q", other)
	}()
	select {
	case err := <-ready:
		if err != nil {
			return s, err
		}
	case <-time.After(time.Minute):
		return s, errors.New("program not ready after a minute")
	}
	pid, err := runc.InitPID(id)
	if err != nil {
		return s, err
	}
	time.Sleep(pid1Settle)
	var parts []string
	for _, p := range oci.Tree(pid) {
		st, err := oci.ReadProc(p)
		if err != nil || st.Comm == "stage" {
			continue // gone, or the program: not the init's cost
		}
		s.procs++
		s.rssKiB += st.RSSKiB
		s.threads += st.Threads
		parts = append(parts, fmt.Sprintf("%s %d KiB %d threads", st.Comm, st.RSSKiB, st.Threads))
	}
	s.detail = strings.Join(parts, " + ")
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return s, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	t0 := time.Now()
	if err := unix.PidfdSendSignal(pidfd, unix.SIGTERM, nil, 0); err != nil {
		return s, fmt.Errorf("SIGTERM to PID 1: %w", err)
	}
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 60_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return s, fmt.Errorf("PID 1 still there a minute after SIGTERM (%v)", err)
		}
		break
	}
	s.termToInit = time.Since(t0)
	select {
	case err := <-done:
		s.termToRunc = time.Since(t0)
		done <- err // for the deferred wait
		if err != nil {
			return s, fmt.Errorf("container exited: %v, want status 0", err)
		}
	case <-time.After(time.Minute):
		return s, errors.New("runc run still running a minute after PID 1 exited")
	}
	return s, nil
}

// pid1Median is the median of each figure on its own.
func pid1Median(ss []pid1Sample) pid1Sample {
	med := func(f func(pid1Sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return pid1Sample{
		procs:      int(med(func(s pid1Sample) float64 { return float64(s.procs) })),
		rssKiB:     int(med(func(s pid1Sample) float64 { return float64(s.rssKiB) })),
		threads:    int(med(func(s pid1Sample) float64 { return float64(s.threads) })),
		termToInit: time.Duration(med(func(s pid1Sample) float64 { return float64(s.termToInit) })),
		termToRunc: time.Duration(med(func(s pid1Sample) float64 { return float64(s.termToRunc) })),
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

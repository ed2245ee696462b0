package tether_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/tetherproc/tether"
)

// Go benchmarks for profiling hot paths; the comparison run is `make bench`.

func BenchmarkSpawnTrue(b *testing.B) {
	c := &tether.Cmd{Path: "/bin/true"}
	for b.Loop() {
		if _, err := c.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeedCycle(b *testing.B) {
	yes, err := exec.LookPath("yes")
	if err != nil {
		b.Skip(err)
	}
	c := &tether.Cmd{Path: yes, Stdout: tether.Pipe()}
	buf := make([]byte, 16)
	for b.Loop() {
		p, err := c.Start(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Stdout().Read(buf); err != nil {
			b.Fatal(err)
		}
		_ = p.Kill()
		<-p.Done()
	}
}

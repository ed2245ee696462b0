//go:build !linux

package tether

// ReapOrphans reaps exited children tether did not start; see the Linux
// documentation. Elsewhere it returns ErrUnsupported.
func ReapOrphans() (int, error) { return 0, ErrUnsupported }

func forkOwned(fork func() (int, error)) (int, error) { return fork() }

func disown(int) {}

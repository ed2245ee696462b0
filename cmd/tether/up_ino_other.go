//go:build !unix

package main

import "io/fs"

// fileIno: no inode numbers here; tether up then always removes its
// control socket at the end (see upControl.close).
func fileIno(fs.FileInfo) uint64 { return 0 }

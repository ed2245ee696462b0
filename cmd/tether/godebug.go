//go:build go1.25

// go.mod asks for the oldest Go the code needs (1.24), and a main module's go
// line also picks its binaries' GODEBUG defaults: without these lines a
// tether built with Go 1.25 or later would size GOMAXPROCS to the host's CPUs
// instead of its container's CPU limit (https://go.dev/doc/godebug#go-125).
// tether run is a container's PID 1, so keep Go 1.25's container-aware
// default. The build tag keeps a Go 1.24 toolchain, which knows neither
// setting, from refusing to build.

//go:debug containermaxprocs=1
//go:debug updatemaxprocs=1

package main

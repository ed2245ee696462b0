module github.com/tetherproc/tether

go 1.24.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/creack/pty v1.1.24
	github.com/fsnotify/fsnotify v1.10.1
	golang.org/x/sys v0.41.0
	golang.org/x/term v0.40.0
)

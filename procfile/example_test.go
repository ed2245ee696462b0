package procfile_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tetherproc/tether/procfile"
)

// The path tether up takes: read the Procfile and .env, pick the formation,
// and name each process and its PORT as foreman would.
func Example() {
	entries, err := procfile.Parse(strings.NewReader(`
# The app
web: bundle exec puma -p $PORT
worker: bundle exec sidekiq
clock: bundle exec clockwork clock.rb
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	env, err := procfile.ParseEnv(strings.NewReader("PORT=3000\nRACK_ENV=development\n"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// PORT from .env first, then the environment (here: nothing).
	lookup := func(key string) (string, bool) {
		for _, v := range env {
			if v.Key == key {
				return v.Value, true
			}
		}
		return "", false
	}
	base, err := procfile.BasePort(lookup)
	if err != nil {
		fmt.Println(err)
		return
	}
	counts, err := procfile.ParseFormation("web=2,worker=1", entries)
	if err != nil {
		fmt.Println(err)
		return
	}
	instances, err := procfile.Instances(entries, counts, base)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range instances {
		fmt.Printf("%-8s PORT=%d  %s\n", in.Name, in.Port, in.Command)
	}
	// Output:
	// web.1    PORT=3000  bundle exec puma -p $PORT
	// web.2    PORT=3001  bundle exec puma -p $PORT
	// worker.1 PORT=3100  bundle exec sidekiq
}

func ExampleParse_error() {
	_, err := procfile.Parse(strings.NewReader("web: puma\nworker:\n"))
	fmt.Println(err)

	var se *procfile.SyntaxError
	if errors.As(err, &se) {
		fmt.Println(se.Line, se.Col)
	}
	// Output:
	// procfile: Procfile:2:8: missing command after ':'
	// 2 8
}

func ExampleParseEnv() {
	src := `
# Comments and blank lines are skipped.
export DATABASE_URL=postgres://localhost/app   # trailing comment dropped
GREETING="hello\tworld"
LITERAL='$HOME stays'
LOG_DIR=$HOME/log
`
	home := func(key string) (string, bool) {
		if key == "HOME" {
			return "/home/ada", true
		}
		return "", false
	}
	vars, err := procfile.ParseEnv(strings.NewReader(src), home) // os.LookupEnv in real use
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range vars {
		fmt.Printf("%s=%q\n", v.Key, v.Value)
	}
	// Output:
	// DATABASE_URL="postgres://localhost/app"
	// GREETING="hello\tworld"
	// LITERAL="$HOME stays"
	// LOG_DIR="/home/ada/log"
}

func ExampleParseFormation() {
	entries := []procfile.Entry{{Name: "web", Command: "puma"}, {Name: "worker", Command: "sidekiq"}}
	for _, spec := range []string{"", "web=2", "all=2,worker=0", "db=1"} {
		counts, err := procfile.ParseFormation(spec, entries)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%q: web=%d worker=%d\n", spec, counts["web"], counts["worker"])
	}
	// Output:
	// "": web=1 worker=1
	// "web=2": web=2 worker=0
	// "all=2,worker=0": web=2 worker=0
	// procfile: formation "db=1": no process named "db"
}

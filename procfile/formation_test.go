package procfile

import (
	"reflect"
	"strings"
	"testing"
)

var threeEntries = []Entry{{"web", "puma", 1}, {"worker", "sidekiq", 2}, {"clock", "clockwork", 3}}

func TestParseFormation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want map[string]int
	}{
		{"", map[string]int{"web": 1, "worker": 1, "clock": 1}},
		{"   ", map[string]int{"web": 1, "worker": 1, "clock": 1}},
		{"all=1", map[string]int{"web": 1, "worker": 1, "clock": 1}},
		{"all=0", map[string]int{"web": 0, "worker": 0, "clock": 0}},
		{"web=2", map[string]int{"web": 2, "worker": 0, "clock": 0}},
		{"web=2,worker=1", map[string]int{"web": 2, "worker": 1, "clock": 0}},
		{"web=2,all=3", map[string]int{"web": 2, "worker": 3, "clock": 3}},
		{"all=3,web=0", map[string]int{"web": 0, "worker": 3, "clock": 3}},
		{" web = 2 , worker=1 ,", map[string]int{"web": 2, "worker": 1, "clock": 0}},
		{"web=2,,worker=01", map[string]int{"web": 2, "worker": 1, "clock": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFormation(tt.spec, threeEntries)
			if err != nil {
				t.Fatalf("ParseFormation(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFormation(%q) = %v, want %v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestParseFormationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want string // a substring of the error
	}{
		{"web", `"web" is not name=count`},
		{"db=1", `no process named "db"`},
		{"web=1,web=2", `"web" given twice`},
		{"all=1,all=2", `"all" given twice`},
		{"web=", `count for web: "" is not a number`},
		{"web=x", `count for web: "x" is not a number`},
		{"web=-1", `count for web: "-1" is not a number`},
		{"web=+1", `count for web: "+1" is not a number`},
		{"web=0x10", `count for web: "0x10" is not a number`},
		{"web=1=2", `count for web: "1=2" is not a number`},
		{"web=99999999999999999999", `count for web: "99999999999999999999" is too large`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFormation(tt.spec, threeEntries)
			if err == nil {
				t.Fatalf("ParseFormation(%q) = %v, want an error", tt.spec, got)
			}
			if !strings.HasPrefix(err.Error(), "procfile: formation ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFormation(%q) error %q, want it to start \"procfile: formation\" and contain %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestBasePort(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == "PORT" {
				return v, true
			}
			return "", false
		}
	}
	unset := func(string) (string, bool) { return "", false }
	tests := []struct {
		name    string
		lookup  func(string) (string, bool)
		want    int
		wantErr bool
	}{
		{"nil-lookup", nil, 5000, false},
		{"unset", unset, 5000, false},
		{"set", env("3000"), 3000, false},
		{"blanks", env(" 3000\n"), 3000, false},
		{"max", env("65535"), 65535, false},
		{"empty", env(""), 0, true},
		{"zero", env("0"), 0, true},
		{"too-big", env("65536"), 0, true},
		{"word", env("http"), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := BasePort(tt.lookup)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("BasePort = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestInstances(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		counts map[string]int
		base   int
		want   []Instance
	}{
		{
			name:   "foreman-default",
			counts: map[string]int{"web": 1, "worker": 1, "clock": 1},
			base:   5000,
			want: []Instance{
				{"web.1", "web", "puma", 1, 5000},
				{"worker.1", "worker", "sidekiq", 1, 5100},
				{"clock.1", "clock", "clockwork", 1, 5200},
			},
		},
		{
			name:   "several-instances",
			counts: map[string]int{"web": 3, "worker": 2},
			base:   3000,
			want: []Instance{
				{"web.1", "web", "puma", 1, 3000},
				{"web.2", "web", "puma", 2, 3001},
				{"web.3", "web", "puma", 3, 3002},
				{"worker.1", "worker", "sidekiq", 1, 3100},
				{"worker.2", "worker", "sidekiq", 2, 3101},
			},
		},
		{
			// foreman indexes by Procfile position, whether the type runs or not.
			name:   "skipped-type-keeps-its-ports",
			counts: map[string]int{"web": 0, "clock": 2},
			base:   5000,
			want: []Instance{
				{"clock.1", "clock", "clockwork", 1, 5200},
				{"clock.2", "clock", "clockwork", 2, 5201},
			},
		},
		{"nothing", map[string]int{}, 5000, nil},
		{
			name:   "up-to-65535",
			counts: map[string]int{"clock": 2},
			base:   65334,
			want: []Instance{
				{"clock.1", "clock", "clockwork", 1, 65534},
				{"clock.2", "clock", "clockwork", 2, 65535},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Instances(threeEntries, tt.counts, tt.base)
			if err != nil {
				t.Fatalf("Instances: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Instances\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestInstancesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		counts map[string]int
		base   int
	}{
		{"base-zero", map[string]int{"web": 1}, 0},
		{"base-negative", map[string]int{"web": 1}, -1},
		{"base-too-big", map[string]int{"web": 1}, 65536},
		{"past-65535", map[string]int{"clock": 3}, 65334},
		{"type-start-past-65535", map[string]int{"clock": 1}, 65400},
		{"huge-count", map[string]int{"web": int(^uint(0) >> 1)}, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Instances(threeEntries, tt.counts, tt.base)
			if err == nil {
				t.Fatalf("Instances = %+v, want an error", got)
			}
			if !strings.HasPrefix(err.Error(), "procfile: ") {
				t.Errorf("error %q does not start with \"procfile: \"", err)
			}
		})
	}
}

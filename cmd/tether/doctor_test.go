package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDoctor(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"doctor"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"group", "keeper", "cgroup", "pidns", "auto (the default) picks: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDoctorJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"doctor", "-json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Auto   string
		Levels []struct {
			Level     string
			Available bool
		}
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r.Auto == "" || len(r.Levels) != 4 || !r.Levels[0].Available {
		t.Errorf("report %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), nil, &out, &errb); !errors.Is(err, errUsage) {
		t.Errorf("no command: %v", err)
	}
	if err := run(context.Background(), []string{"nope"}, &out, &errb); !errors.Is(err, errUsage) || !strings.Contains(errb.String(), `unknown command "nope"`) {
		t.Errorf("unknown command: %v, %s", err, errb.String())
	}
	if err := run(context.Background(), []string{"doctor", "-bogus"}, &out, &errb); err == nil {
		t.Error("bad flag accepted")
	}
}

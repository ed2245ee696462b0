//go:build !linux && !windows && !darwin

package tether

import "runtime"

func probeFacts() []string { return []string{"os: " + runtime.GOOS} }

func probeLevels() []LevelReport {
	return []LevelReport{
		{Level: ContainGroup, Available: true, Detail: "process group per child; a wait4 goroutine per child"},
		{Level: ContainKeeper, Detail: "Linux and macOS only"},
		{Level: ContainCgroup, Detail: "Linux only"},
		{Level: ContainPIDNamespace, Detail: "Linux only"},
	}
}

func autoLevel() Containment { return ContainGroup }

//go:build !linux

package tether

import "runtime"

func probeFacts() []string { return []string{"os: " + runtime.GOOS} }

func probeLevels() []LevelReport {
	group := LevelReport{Level: ContainGroup, Available: true,
		Detail: "process group per child; a wait4 goroutine per child"}
	if runtime.GOOS == "windows" {
		group = LevelReport{Level: ContainGroup, Detail: "not implemented on Windows yet (Job Objects planned)"}
	}
	return []LevelReport{
		group,
		{Level: ContainKeeper, Detail: "Linux only for now"},
		{Level: ContainCgroup, Detail: "Linux only"},
	}
}

func autoLevel() Containment { return ContainGroup }

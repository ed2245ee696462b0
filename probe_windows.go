package tether

import (
	"fmt"

	"golang.org/x/sys/windows"
)

func probeFacts() []string {
	v := windows.RtlGetVersion()
	facts := []string{fmt.Sprintf("os: windows %d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber)}
	if _, err := windows.GetConsoleCP(); err == nil {
		facts = append(facts, "console: yes (stop signals are CTRL_BREAK_EVENT)")
	} else {
		facts = append(facts, "console: no (stop signals cannot be sent: Stop terminates the tree at once)")
	}
	return facts
}

func probeLevels() []LevelReport {
	group := LevelReport{Level: ContainGroup, Available: true,
		Detail: "a Job Object per child, killed with the parent (KILL_ON_JOB_CLOSE); " +
			"stop by CTRL_BREAK_EVENT, then TerminateJobObject; a waiting thread per child"}
	// The only sure test is to make one.
	if job, err := newTreeJob(); err != nil {
		group.Available = false
		group.Detail = "cannot create a kill-on-close Job Object: " + err.Error()
	} else {
		_ = windows.CloseHandle(job) // best effort: empty
	}
	return []LevelReport{
		group,
		{Level: ContainKeeper, Detail: "Linux only; here the Job Object already ties the tree to the parent"},
		{Level: ContainCgroup, Detail: "Linux only"},
		{Level: ContainPIDNamespace, Detail: "Linux only"},
	}
}

func autoLevel() Containment { return ContainGroup }

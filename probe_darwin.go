package tether

import (
	"fmt"
	"os"
)

func probeFacts() []string {
	return []string{"os: darwin", "no child subreaper, no PDEATHSIG, no cgroups: trees are process groups",
		fmt.Sprintf("running as uid %d", os.Getuid())}
}

func probeLevels() []LevelReport {
	out := []LevelReport{{Level: ContainGroup, Available: true,
		Detail: "a process group per child; Signal/Stop/Kill reach the group; nothing stops the tree if the parent dies"}}
	if k, err := getKeeper(); err != nil {
		out = append(out, LevelReport{Level: ContainKeeper, Detail: "cannot start the keeper: " + err.Error()})
	} else {
		<-k.hello
		out = append(out, LevelReport{Level: ContainKeeper, Available: true, Detail: fmt.Sprintf(
			"keeper pid %d (this binary re-executed): trees as process groups, the parent watched by kqueue; "+
				"setsid and double-forked descendants escape, and a SIGKILLed keeper leaves its trees. "+
				"Built, not run, in tether's CI: opt in with ContainKeeper", k.pid)})
	}
	return append(out,
		LevelReport{Level: ContainCgroup, Detail: "Linux only"},
		LevelReport{Level: ContainPIDNamespace, Detail: "Linux only"})
}

// autoLevel stays ContainGroup on macOS until the keeper has run there.
func autoLevel() Containment { return ContainGroup }

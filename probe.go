package tether

// Report says what containment this machine offers this program and what
// ContainAuto picks; Probe makes one. `tether doctor` prints it.
type Report struct {
	Levels []LevelReport
	// Auto is what ContainAuto resolves to here.
	Auto Containment
	// Facts are the observations behind the levels ("pidfd: yes", ...).
	Facts []string
}

// LevelReport is one containment level on this machine.
type LevelReport struct {
	Level     Containment
	Available bool
	// Detail says how the level works here, or why it is not available.
	Detail string
}

// Probe examines the machine. On Linux it starts this program's keeper if
// none runs yet (that is the only sure test that one can run), which the
// first kept Start would do anyway.
func Probe() Report {
	r := Report{Facts: probeFacts()}
	r.Levels = probeLevels()
	r.Auto = autoLevel()
	return r
}

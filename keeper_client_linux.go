package tether

// selfExe is what startKeeper re-executes: this very binary, even if its
// path was replaced or removed since.
func selfExe() (string, error) { return "/proc/self/exe", nil }

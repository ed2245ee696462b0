// Package procfile reads the files a foreman-style process manager runs
// from: a Procfile of process types and a .env file of variables. It also
// names instances and assigns them ports the way foreman does, for tether up.
//
// A Procfile has one "name: command" line per process type:
//
//	web: bundle exec puma -p $PORT
//	worker: bundle exec sidekiq
//
// Parse and ParseEnv read files as foreman and the dotenv gem it uses do.
// The main difference: a line they would silently skip is a *SyntaxError
// here, with the line and column, so a typo cannot quietly drop a process or
// a variable. The smaller ones are listed on ParseEnv. Format and FormatEnv
// write files that Parse and ParseEnv read back unchanged.
//
// ParseFormation reads a formation such as "web=2,worker=1"; Instances
// turns it into the processes to start, web.1, web.2, worker.1, each with
// its PORT: base + 100 per Procfile entry before it + instance number - 1.
//
// The package is pure: it does no I/O beyond the reader or file it is given,
// starts nothing, and reads the environment only through the lookup
// functions its callers pass.
package procfile

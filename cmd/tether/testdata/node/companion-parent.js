// The second seed's companion scenario: a parent forks a companion that it
// talks to over Node's IPC channel. Usage:
//   node companion-parent.js DIR plain          child_process.fork as usual
//   node companion-parent.js DIR TETHER         the same through tether run -die-with-parent
// It prints "ready CHILDPID" and "pong", then waits to be killed.
'use strict';
const { fork } = require('child_process');
const path = require('path');

const [dir, how] = process.argv.slice(2);
const opts = { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] };
if (how !== 'plain') {
  // tether run, then node itself, runs the companion: fork's execPath and
  // execArgv put tether in front, and the channel (fd 3) goes through.
  opts.execPath = how;
  opts.execArgv = ['run', '-die-with-parent', '-grace', '5s', '--', process.execPath];
}
const child = fork(path.join(__dirname, 'companion-child.js'), [dir], opts);
child.on('message', (m) => {
  if (m.ready) {
    console.log('ready ' + m.ready);
    child.send({ ping: 1 });
  } else if (m.pong) {
    console.log('pong');
  }
});
setInterval(() => {}, 1000); // a parent with work of its own

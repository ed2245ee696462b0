// The first seed's scenario (nodejs/node#4049) through tether run: start
// `yes`, read once, kill, and count 'close' events. Usage:
//   node cycles.js TETHER N
// Prints "closed N of N" when every ChildProcess closed.
'use strict';
const { spawn } = require('child_process');
const [tether, n] = [process.argv[2], Number(process.argv[3])];
let started = 0, closed = 0;
function next() {
  if (started === n) return;
  started++;
  const p = spawn(tether, ['run', '-die-with-parent', '--', 'yes']);
  p.on('close', () => {
    closed++;
    if (closed === n) console.log('closed ' + closed + ' of ' + n);
    else next();
  });
  p.stdout.read(); // the seed's read, before any data: it used to keep 'close' from firing
  p.kill();
}
next();

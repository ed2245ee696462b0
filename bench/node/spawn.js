// Spawn /bin/true N times, one after another, waiting for 'close' each time.
// usage: node spawn.js N   prints the elapsed seconds.
const { spawn } = require('child_process');
const n = Number(process.argv[2] || 1000);
const t0 = process.hrtime.bigint();
let i = 0;
function next() {
  if (i++ === n) {
    console.log((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(6));
    return;
  }
  spawn('/bin/true', [], { stdio: 'ignore' }).on('close', next);
}
next();

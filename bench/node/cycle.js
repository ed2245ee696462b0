// nodejs/node#4049's cycle: spawn yes, read once, kill, wait for 'close'.
// usage: node cycle.js N   prints the elapsed seconds and the closes received.
const { spawn } = require('child_process');
const n = Number(process.argv[2] || 1000);
const t0 = process.hrtime.bigint();
let i = 0, closes = 0;
function next() {
  if (i++ === n) {
    console.log((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(6), closes);
    return;
  }
  const p = spawn('yes');
  p.stdout.once('data', () => p.kill('SIGKILL'));
  p.on('close', () => { closes++; next(); });
}
next();

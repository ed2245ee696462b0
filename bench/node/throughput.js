// Read N bytes of a child's stdout (head -c N /dev/zero) and count them.
// usage: node throughput.js N   prints the elapsed seconds and the bytes read.
const { spawn } = require('child_process');
const n = String(process.argv[2] || 1 << 30);
const t0 = process.hrtime.bigint();
let total = 0;
const p = spawn('head', ['-c', n, '/dev/zero']);
p.stdout.on('data', (b) => { total += b.length; });
p.on('close', () => {
  console.log((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(6), total);
});

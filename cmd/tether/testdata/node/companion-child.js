// The companion: it answers pings, keeps a timer of its own (so it does not
// end by itself), and cleans up on SIGTERM. DIR/term-PID marks the cleanup,
// DIR/disconnect-PID the channel's end.
'use strict';
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];

process.on('message', (m) => {
  if (m.ping) process.send({ pong: 1 });
});
process.on('disconnect', () => {
  fs.writeFileSync(path.join(dir, 'disconnect-' + process.pid), '');
});
process.once('SIGTERM', () => {
  fs.writeFileSync(path.join(dir, 'term-' + process.pid), '');
  process.exit(0);
});
setInterval(() => {}, 1000); // companion work: a timer
process.send({ ready: process.pid });

// A Node parent for tether's IPC interop tests: it runs a Go child (the test
// binary as program ipc-echo) with child_process.fork or spawn(..., 'ipc'),
// checks every echo, and prints one JSON line with the result.
//
// usage: node parent.js fork|spawn GO_BINARY disconnect-parent|disconnect-child
'use strict';
const { fork, spawn } = require('child_process');
const assert = require('assert');
const fs = require('fs');
const path = require('path');

const [mode, bin, ending] = process.argv.slice(2);
const values = JSON.parse(fs.readFileSync(path.join(__dirname, 'values.json'), 'utf8'));
const env = { ...process.env, TETHER_TESTPROC: 'ipc-echo' };

let child;
if (mode === 'fork') {
  // fork runs execPath with the module path as its first argument.
  child = fork('ipc-echo', [], { execPath: bin, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
} else {
  child = spawn(bin, ['ipc-echo'], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

const big = 'x'.repeat(1 << 20);
const N = 10000;
const expected = [...values, big];
for (let i = 0; i < N; i++) expected.push({ seq: i });

const result = { mode, ending, echoed: 0, disconnect: false, exit: null };
let next = 0;
const fail = (err) => {
  result.error = String(err && err.stack || err);
  console.log(JSON.stringify(result));
  process.exit(1);
};
const timer = setTimeout(() => fail('timeout'), 60000);

child.on('error', fail);
child.on('message', (m) => {
  if (next === 0 && m === 'ready') { next = -1; return sendAll(); }
  try {
    assert.deepStrictEqual(m, expected[result.echoed]);
  } catch (e) {
    return fail(e);
  }
  result.echoed++;
  if (result.echoed === expected.length) {
    if (ending === 'disconnect-parent') child.disconnect();
    else child.send('disconnect');
  }
});
let finished = false;
const finish = () => {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  process.exit(result.echoed === expected.length && result.disconnect && result.exit.code === 0 ? 0 : 1);
};
child.on('disconnect', () => {
  result.disconnect = true;
  if (result.exit) finish();
});
child.on('exit', (code, signal) => {
  result.exit = { code, signal };
  // Node may report the exit before the channel's end (seen on Windows,
  // where the two come through different waits): wait for the end, bounded.
  if (result.disconnect) finish();
  else setTimeout(finish, 5000);
});

function sendAll() {
  for (const v of expected) child.send(v);
}

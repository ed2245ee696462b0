// A Node companion for examples/companion: the same protocol as the Go one.
'use strict';
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
process.on('message', (req) => {
  if (req.op === 'fib') {
    const t = process.hrtime.bigint();
    const result = fib(req.n);
    process.send({ op: 'fib', n: req.n, result, ms: Number(process.hrtime.bigint() - t) / 1e6 });
  } else if (req.op === 'crash') {
    process.exit(3);
  }
});
// The parent closed the channel, or is gone: a companion ends with it.
process.on('disconnect', () => process.exit(0));
process.send({ op: 'ready', pid: process.pid });

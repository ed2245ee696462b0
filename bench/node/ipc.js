// Node's own IPC as the reference: fork a Node child and time N small
// messages one way (until the child says it got them all) or N round trips.
// usage: node ipc.js oneway|roundtrip N   prints the elapsed seconds.
const { fork } = require('child_process');
const path = require('path');
const [mode, n] = [process.argv[2], Number(process.argv[3])];
const child = fork(path.join(__dirname, 'ipc_child.js'), [mode === 'oneway' ? 'sink' : 'echo', String(n)]);
const msg = (i) => ({ seq: i, msg: 'hello' });
let t0;
let i = 0;
function finish() {
  console.log((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(6));
  child.disconnect();
}
child.on('spawn', () => {
  t0 = process.hrtime.bigint();
  if (mode === 'oneway') {
    child.on('message', finish);
    // Respect backpressure as a careful sender would: send returns false
    // when the channel's queue is long.
    const pump = () => {
      while (i < n) {
        if (!child.send(msg(i++))) {
          setImmediate(pump);
          return;
        }
      }
    };
    pump();
  } else {
    child.on('message', () => {
      if (++i === n) finish();
      else child.send(msg(i));
    });
    child.send(msg(0));
  }
});

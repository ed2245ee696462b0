// The child of the IPC benchmarks: "sink" counts N messages and answers
// "done"; "echo" sends every message back.
// usage: (forked, or spawned with an 'ipc' stdio) node ipc_child.js sink|echo N
const [mode, n] = [process.argv[2], Number(process.argv[3])];
let got = 0;
process.on('message', (m) => {
  if (mode === 'echo') {
    process.send(m);
    return;
  }
  if (++got === n) process.send('done');
});
process.on('disconnect', () => process.exit(0));

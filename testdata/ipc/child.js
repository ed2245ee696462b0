// A Node child for tether's IPC interop tests: it echoes every message back
// with process.send, and acts on a few commands.
'use strict';
const net = require('net');

process.on('warning', (w) => {
  process.send({ warning: w.name });
});

process.on('message', (m) => {
  if (m === 'disconnect') {
    process.disconnect();
    return;
  }
  if (m === 'internal') {
    // Node's own messages must never reach the Go side as user messages.
    process.send({ cmd: 'NODE_TETHER_TEST', secret: true });
    process.send({ after: 'internal' });
    return;
  }
  if (m === 'handle') {
    // A handle Go cannot receive (a server on loopback): Node queues what
    // follows until the receiver answers; tether answers NODE_HANDLE_NACK.
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      process.send({ with: 'handle' }, srv, () => srv.close());
      process.send({ after: 'handle' });
    });
    return;
  }
  if (m && m.count) {
    for (let i = 0; i < m.count; i++) process.send({ i });
    return;
  }
  process.send(m);
});

process.on('disconnect', () => {
  // The parent closed the channel: exit as a companion should.
  process.exit(0);
});

process.send('ready');

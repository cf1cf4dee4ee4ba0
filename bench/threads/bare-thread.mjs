/** A bare postMessage request/response thread: `{ i, a, b }` -> `{ i, r }`. */
import { parentPort } from 'node:worker_threads';

parentPort.on('message', (m) => {
  parentPort.postMessage({ i: m.i, r: m.buf === undefined ? m.a + m.b : m.buf.byteLength });
});

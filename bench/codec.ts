/**
 * The codec's cost on the bench's object payloads, in one process: encode (the plain-JSON walk
 * with its snapshot copy), the receive-side check (a walk, no allocation), and JSON's own
 * stringify and parse for scale. CPU µs per payload (process.cpuUsage).
 * Usage: node --import tsx bench/codec.ts
 *
 * @module
 */
import { checkEncoded, encode } from '../src/protocol/codec.js';
import { objectTemplate } from './shape.js';

for (const size of [64, 1024, 65536]) {
  const template = objectTemplate(size);
  const n = size > 2000 ? 3_000 : 200_000;
  const time = (name: string, f: () => unknown) => {
    for (let i = 0; i < n / 5; i++) f();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const c = process.cpuUsage(c0);
    console.log(
      `${String(size).padStart(6)} B  ${name.padEnd(22)} ${((c.user + c.system) / n).toFixed(2)} µs`,
    );
  };
  const encoded = encode(template);
  const text = JSON.stringify(template);
  time('encode (walk + copy)', () => encode({ ...template, seq: 1 }));
  time('checkEncoded (walk)', () => checkEncoded(encoded));
  time('JSON.stringify', () => JSON.stringify({ ...template, seq: 1 }));
  time('JSON.parse', () => JSON.parse(text));
}

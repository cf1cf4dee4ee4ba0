/** Each thread of the pool: `validate` and `checksum`, and the rules version it was told. */
import { connectThread } from 'clusterbus/threads';
import { z } from 'zod';
import { contract } from './contract.js';

const Row = z.object({ id: z.number().int(), email: z.string().email() });
let rulesVersion = 1;

const bus = await connectThread(contract);
bus.handle('validate', ({ rows }, { signal }) => {
  const invalid: number[] = [];
  rows.forEach((row, i) => {
    signal.throwIfAborted(); // cooperative cancellation
    if (!Row.safeParse(row).success) invalid.push(i);
  });
  return { valid: rows.length - invalid.length, invalid, rulesVersion };
});
bus.handle('checksum', ({ data }) => new Uint8Array(data).reduce((sum, b) => sum + b, 0));
bus.subscribe('rules.changed', ({ version }) => {
  rulesVersion = version;
});

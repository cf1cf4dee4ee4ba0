/**
 * A thread pool in a plain Node script: `node --import tsx examples/threads/main.ts`. Starts two
 * threads, validates rows on any thread, publishes a rules change to every thread, moves a
 * buffer with `transfer`, shows a validation error, and closes.
 */
import { BusError } from 'clusterbus';
import { createPool } from 'clusterbus/threads';
import { contract } from './contract.js';

/**
 * Under tsx on Node 20, threads do not inherit tsx's loader: a `.ts` thread starts from a
 * one-line module that registers tsx in the thread first (see docs/threads.md). Built `.js`
 * threads need none of this.
 */
function threadFile(url: URL): URL {
  if (!url.pathname.endsWith('.ts')) return url;
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(url.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

const pool = await createPool({
  contract,
  file: threadFile(new URL('./validate.ts', import.meta.url)),
  threads: 2,
});
try {
  const rows = [
    { id: 1, email: 'a@example.com' },
    { id: 2, email: 'nope' },
  ];
  const report = await pool.call('any', 'validate', { rows }, { timeoutMs: 5_000 });
  console.log(`validated: ${report.valid} valid, invalid rows ${report.invalid.join(', ')}`);

  pool.publish('rules.changed', { version: 7 });
  const all = await pool.callAll('validate', { rows });
  console.log(
    `rules version per thread: ${all.map((r) => (r.status === 'fulfilled' ? r.value.rulesVersion : r.error.code)).join(', ')}`,
  );

  const data = new Uint8Array(1024).fill(1).buffer;
  const sum = await pool.call('any', 'checksum', { data }, { transfer: [data] });
  console.log(`checksum ${sum}; the buffer moved: byteLength here is now ${data.byteLength}`);

  try {
    await pool.call('any', 'checksum', { data: 'not a buffer' as unknown as ArrayBuffer });
  } catch (error) {
    if (!(error instanceof BusError)) throw error;
    console.log(`${error.code}: ${error.issues?.map((i) => i.path.join('.')).join(', ')}`);
  }
  const { threads, busy, queued, callsServed } = pool.stats();
  console.log(
    `stats: ${threads} threads, ${busy} busy, ${queued} queued, ${callsServed} calls served`,
  );
} finally {
  await pool.close();
}
console.log('closed');

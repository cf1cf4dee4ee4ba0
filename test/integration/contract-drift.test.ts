/** Contract drift: a worker whose contract differs from the primary's (a rolling deploy). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BusError, type ClusterApp, startCluster } from '../../src/index.js';
import { contract } from './fixtures/contract.js';
import { expectNoProcessLeft } from './helpers.js';

const DRIFT_WORKER = fileURLToPath(new URL('./fixtures/drift-worker.ts', import.meta.url));
let dir: string | undefined;
let app: ClusterApp<typeof contract> | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  expectNoProcessLeft();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function outcomes(file: string): Array<{ connected?: boolean; code?: string; message?: string }> {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { connected?: boolean; code?: string; message?: string });
}

/** Collects the BusWarnings printed while `run` runs (errors reported with no listener yet). */
async function warningsDuring<T>(
  run: () => Promise<T>,
): Promise<{ result: T | BusError; warnings: Error[] }> {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => {
    if (w.name === 'BusWarning') warnings.push(w);
  };
  process.on('warning', onWarning);
  try {
    const result = await run().catch((e: unknown) => e as BusError);
    await new Promise((r) => setTimeout(r, 20)); // warnings are emitted on the next tick
    return { result, warnings };
  } finally {
    process.off('warning', onWarning);
  }
}

describe('contract drift', () => {
  it('refuses a worker with a different contract: CONTRACT_MISMATCH naming what differs', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clusterbus-drift-'));
    const out = join(dir, 'out.jsonl');
    const { result, warnings } = await warningsDuring(() =>
      startCluster({
        contract,
        workers: 1,
        exec: DRIFT_WORKER,
        execArgv: ['--import', 'tsx'],
        env: { DRIFT_OUT: out },
        restart: false,
        readyTimeoutMs: 5_000,
      }),
    );
    expect(result).toBeInstanceOf(BusError); // never ready: the only worker was refused
    const [first] = outcomes(out);
    expect(first?.code).toBe('CONTRACT_MISMATCH');
    expect(first?.message).toContain("method 'add' (schemas differ)");
    expect(first?.message).toContain("method 'extra' (only in the worker's contract)");
    const reported = warnings.find(
      (w) => (w as Error & { code?: string }).code === 'CONTRACT_MISMATCH',
    );
    expect(reported?.message).toContain("method 'add' (schemas differ)");
  });

  it('lets it in with allowContractMismatch, reporting the difference', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clusterbus-drift-'));
    const out = join(dir, 'out.jsonl');
    const { result, warnings } = await warningsDuring(() =>
      startCluster({
        contract,
        workers: 1,
        exec: DRIFT_WORKER,
        execArgv: ['--import', 'tsx'],
        env: { DRIFT_OUT: out },
        allowContractMismatch: true,
      }),
    );
    expect(result).not.toBeInstanceOf(BusError);
    app = result as ClusterApp<typeof contract>;
    expect(outcomes(out)).toEqual([{ connected: true }]);
    expect(warnings.map((w) => w.message).join('\n')).toContain('allowed by allowContractMismatch');
    const id = app.workers()[0]!.id;
    expect((await app.bus.call(id, 'whoami')).workerId).toBe(id);
  });
});

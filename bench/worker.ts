/**
 * A forked worker: runs the implementation named by `BENCH_IMPL`. Each implementation is loaded
 * only in its own workers.
 *
 * @module
 */
import { IMPL_ENV } from './session.js';

export async function startWorker(): Promise<void> {
  const impl = process.env[IMPL_ENV];
  switch (impl) {
    case 'raw-json':
      (await import('./baselines/raw.js')).rawWorker();
      return;
    case 'raw-batched':
      (await import('./baselines/raw.js')).rawWorker(undefined, true);
      return;
    case 'redis':
      (await import('./baselines/redis.js')).redisWorker();
      return;
    case 'birpc':
      (await import('./baselines/birpc.js')).birpcWorker();
      return;
    case 'birpc+zod': {
      const [{ birpcWorker }, { zodTyping }] = await Promise.all([
        import('./baselines/birpc.js'),
        import('./baselines/birpc-zod.js'),
      ]);
      birpcWorker(zodTyping);
      return;
    }
    case 'clusterbus':
      await (await import('./clusterbus.js')).clusterbusWorker();
      return;
    default:
      throw new Error(`bench worker: unknown ${IMPL_ENV} ${JSON.stringify(impl)}`);
  }
}

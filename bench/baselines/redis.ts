/**
 * Redis, the store users would otherwise deploy: `INCR` through ioredis (default options) on
 * 127.0.0.1:6379, one connection per worker. The control channel is raw-json's.
 *
 * @module
 */
import { Redis } from 'ioredis';
import { SkipError } from '../payload.js';
import type { Session } from '../session.js';
import { rawWorker, startRaw } from './raw.js';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

/** A connection from the primary, for setting up and checking; skips the case if Redis is down. */
export async function redisAdmin(): Promise<Redis> {
  const client = new Redis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new SkipError(
      `Redis not reachable at ${REDIS_HOST}:${REDIS_PORT} (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  return client;
}

/** Starts workers that increment through Redis (after checking that Redis answers). */
export async function startRedis(count: number): Promise<Session> {
  (await redisAdmin()).disconnect();
  return startRaw(count, 'redis');
}

/** A worker whose counter is Redis `INCR`; it lets go of Redis when the primary disconnects it. */
export function redisWorker(): void {
  const redis = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  process.once('disconnect', () => redis.disconnect());
  rawWorker((key) => redis.incr(key));
}

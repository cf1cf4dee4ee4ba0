/** A thread of a worker's pool: checks batches (the CPU work of `GET /cpu`). */
import { connectThread } from 'clusterbus/threads';
import { cpuContract } from './cpu-contract.js';
import { checkBatch } from './cpu-work.js';

const bus = await connectThread(cpuContract);
bus.handle('checkBatch', ({ records }) => checkBatch(records));

/** clusterbus's thread of the benchmark. */
import { connectThread } from '../../src/threads/index.js';
import { benchContract } from './contract.js';

const bus = await connectThread(benchContract);
bus.handle('add', ({ a, b }) => a + b);
bus.handle('size', ({ buf }) => buf.byteLength);

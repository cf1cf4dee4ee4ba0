/**
 * The cost of the bus observer on the hot path: what one call adds (`started` + `settled` in the
 * caller, `answered` in the server), in ns. Run: `node --import tsx bench/metrics-observer.ts`.
 */
import { z } from 'zod';
import { BusObserver, OK_CODE } from '../src/bus/observe.js';
import { defineContract } from '../src/index.js';

const contract = defineContract({ methods: { add: { input: z.number(), output: z.number() } } });
const observer = new BusObserver(contract);
const N = 2_000_000;
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const started = observer.started();
    observer.settled('add', OK_CODE, started);
    observer.answered('add', OK_CODE, started);
  }
  const ns = ((performance.now() - t0) * 1e6) / N;
  console.log(`round ${round}: ${ns.toFixed(0)} ns per call (started + settled + answered)`);
}

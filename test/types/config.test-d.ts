/** What the config schema infers: the initial config, updates, the worker's view and handlers. */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  type ClusterApp,
  type ConfigAck,
  type ConfigInput,
  type ConfigUpdateResult,
  type ConfigValue,
  defineContract,
  type HealthReport,
  type StartClusterOptions,
  type Target,
  type WorkerBus,
} from '../../src/index.js';

const contract = defineContract({
  config: z.object({
    port: z.number().default(8080),
    name: z.string().transform((s) => s.length),
    since: z.date(),
  }),
  methods: { ping: {} },
});
type C = typeof contract;

const bare = defineContract({ methods: { ping: {} } });
type Bare = typeof bare;

declare const worker: WorkerBus<C>;
declare const app: ClusterApp<C>;

type In = { port?: number | undefined; name: string; since: Date };
type Out = { port: number; name: number; since: Date };

describe('config inference', () => {
  it('takes zod’s input type where a config is given, and holds its output type', () => {
    expectTypeOf<ConfigInput<C>>().toEqualTypeOf<In>();
    expectTypeOf<ConfigValue<C>>().toEqualTypeOf<Out>();
    expectTypeOf<StartClusterOptions<C>['config']>().toEqualTypeOf<In | undefined>();
    expectTypeOf(app.config.update).parameter(0).toEqualTypeOf<In>();
    expectTypeOf(app.config.update).returns.toEqualTypeOf<Promise<ConfigUpdateResult>>();
    expectTypeOf(app.config.current).toEqualTypeOf<Out>();
    expectTypeOf(worker.config.current).toEqualTypeOf<Out>();
    expectTypeOf(worker.config.version).toEqualTypeOf<number>();
  });

  it('types the change handler with the parsed values', () => {
    worker.config.onChange((next, previous, info) => {
      expectTypeOf(next).toEqualTypeOf<Out>();
      expectTypeOf(previous).toEqualTypeOf<Out>();
      expectTypeOf(info.version).toEqualTypeOf<number>();
    });
    // @ts-expect-error a handler returns nothing (or a promise of nothing)
    worker.config.onChange(() => 42);
  });

  it('is undefined without a config schema', () => {
    expectTypeOf<ConfigValue<Bare>>().toEqualTypeOf<undefined>();
    expectTypeOf<ConfigInput<Bare>>().toEqualTypeOf<undefined>();
  });

  it('reports acknowledgements with a status', () => {
    expectTypeOf<ConfigAck['status']>().toEqualTypeOf<'accepted' | 'refused' | 'failed'>();
  });
});

describe('slots and health', () => {
  it('accepts a slot as a call target', () => {
    expectTypeOf<{ slot: 2 }>().toMatchTypeOf<Target>();
    expectTypeOf(worker.slot).toEqualTypeOf<number>();
    void worker.call({ slot: 0 }, 'ping');
    // @ts-expect-error a slot target needs a slot
    void worker.call({ id: 0 }, 'ping');
  });

  it('types reports in bytes and ms', () => {
    expectTypeOf<HealthReport['rssBytes']>().toEqualTypeOf<number>();
    expectTypeOf(app.health().workers[0]!.report).toEqualTypeOf<HealthReport | undefined>();
  });
});

/**
 * The hub's side of the handshake, in the primary: a worker's hello (its contract checked
 * against the primary's), the welcome with the extension map, ready, the methods it announces,
 * and its bye.
 *
 * @module
 */
import type { Contract } from '../contract.js';
import { BusError } from '../errors.js';
import { encode } from '../protocol/codec.js';
import { type HelloFrame, Kind, type Outgoing, type WelcomeFrame } from '../protocol/envelope.js';
import { describeDrift, fingerprint } from '../protocol/fingerprint.js';
import type { ControlFrame, Peer } from '../protocol/peer.js';
import type { WorkerEntry } from './hub-router.js';

/** What the handshake needs of the primary's bus. */
export interface HandshakeHost {
  /** The primary's contract, that each worker's is compared with. */
  readonly contract: Contract;
  /** Let workers with a different contract in (reported), instead of refusing them. */
  readonly allowContractMismatch: boolean;
  /** Reports what has nobody to reject (the bus's `error` event). */
  report(error: BusError): void;
  /** The extension map of worker `id`'s welcome: the supervisor's part and each extension's. */
  welcome(workerId: number): Record<string, unknown>;
  /** A worker's hello was refused (its contract differs). */
  refused(workerId: number): void;
  /** A worker's bus completed its handshake. */
  connected(workerId: number, pid: number): void;
  /** A new peer over `entry`'s link, for the hello that may follow a bye. */
  renew(entry: WorkerEntry): Peer;
  /** A greeted worker's bus is gone: its leases and watches end. */
  gone(workerId: number): void;
}

/** The hub's handshake with each worker. */
export class HubHandshake {
  /** @param host - the primary's bus. */
  constructor(private readonly host: HandshakeHost) {}

  /** A control frame from `entry`: hello, ready, handlers or bye. */
  control(entry: WorkerEntry, frame: ControlFrame): void {
    switch (frame.k) {
      case Kind.hello:
        if (entry.pid !== undefined) {
          this.host.report(new BusError('PROTOCOL', `worker ${entry.id} said hello twice`));
          return;
        }
        if (!this.checkContract(entry, frame)) {
          this.host.refused(entry.id);
          return;
        }
        entry.pid = frame.pid;
        this.sendWelcome(entry);
        return;
      case Kind.ready:
        if (entry.pid === undefined || entry.connected) {
          this.host.report(new BusError('PROTOCOL', `worker ${entry.id} sent an unexpected ready`));
          return;
        }
        entry.handles = new Set(frame.m);
        entry.connected = true;
        this.host.connected(entry.id, entry.pid);
        return;
      case Kind.handlers:
        entry.handles = new Set(frame.m);
        return;
      case Kind.bye: {
        // The worker closed its bus on purpose: settle what was routed to it, and be ready
        // for a new hello on the same channel.
        const old = entry.peer;
        const greeted = entry.pid !== undefined;
        entry.connected = false;
        entry.pid = undefined;
        entry.handles = new Set();
        entry.peer = this.host.renew(entry);
        old.close('TARGET_EXITED', `worker ${entry.id} closed its bus`);
        // Its bus is gone as surely as if it had exited: its leases and watches end now.
        if (greeted) this.host.gone(entry.id);
        return;
      }
      default:
        this.host.report(
          new BusError('PROTOCOL', `worker ${entry.id} sent an unexpected '${frame.k}' frame`),
        );
    }
  }

  /**
   * Compares a worker's contract fingerprint with the primary's. A difference refuses the worker
   * (`CONTRACT_MISMATCH`, naming what differs: its `connect()` rejects) unless
   * `allowContractMismatch`, which lets it in and reports the difference.
   */
  private checkContract(entry: WorkerEntry, frame: HelloFrame): boolean {
    const mine = fingerprint(this.host.contract);
    if (frame.h === undefined || frame.h === mine.hash) return true;
    const drift = describeDrift(mine, { hash: frame.h, entries: frame.f ?? {} });
    const what = drift.length > 0 ? drift.join(', ') : 'the contracts differ';
    if (this.host.allowContractMismatch) {
      this.host.report(
        new BusError(
          'CONTRACT_MISMATCH',
          `worker ${entry.id} connected with a different contract (allowed by allowContractMismatch): ${what}`,
        ),
      );
      return true;
    }
    const refusal = new BusError(
      'CONTRACT_MISMATCH',
      `worker ${entry.id}'s contract differs from the primary's: ${what}`,
    );
    entry.peer.send({ k: Kind.welcome, w: entry.id, e: refusal.toJSON() });
    this.host.report(refusal);
    return false;
  }

  private sendWelcome(entry: WorkerEntry): void {
    const parts = this.host.welcome(entry.id);
    const frame: Outgoing<WelcomeFrame> = { k: Kind.welcome, w: entry.id };
    if (Object.keys(parts).length > 0) frame.x = encode(parts);
    entry.peer.send(frame);
  }
}

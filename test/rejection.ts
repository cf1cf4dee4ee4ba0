/** A test helper shared by every tier: expect a promise to reject with a BusError. */
import { BusError } from '../src/errors.js';

/** Resolves with the BusError `promise` rejects with; fails if it fulfils or rejects otherwise. */
export async function rejection(promise: Promise<unknown>): Promise<BusError> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    if (!(error instanceof BusError)) throw error;
    return error;
  }
}

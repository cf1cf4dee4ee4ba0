/**
 * The one sink for what a bus reports with nobody to reject (a malformed frame, a subscriber that
 * threw, a frame over the limits): the bus's `error` event, or a process warning when nobody
 * listens. Repeats are aggregated, so that a flood (one IPC message of 100,000 malformed frames)
 * costs a few lines, not 100,000: per code, the first {@link REPORT_BURST} reports of each
 * {@link REPORT_WINDOW_MS} window go out as they come; the rest are counted and summed up in one
 * report of that code when the window ends (`data.suppressed`, and the last message).
 *
 * @module
 */
import { BusError, type BusErrorCode } from '../errors.js';

/** Reports of one code that go out as they come in each window. */
export const REPORT_BURST = 10;
/** The aggregation window, in ms. */
export const REPORT_WINDOW_MS = 1_000;

interface Window {
  /** Reports of this code in the current window. */
  count: number;
  /** The last suppressed one. */
  last: BusError | undefined;
}

/** Rate-aggregates reports per code before handing them to `emit`. */
export class ReportSink {
  private readonly windows = new Map<BusErrorCode, Window>();
  private timer: NodeJS.Timeout | undefined;

  /** @param emit - where a report goes (the bus's `error` event, or a warning). */
  constructor(private readonly emit: (error: BusError) => void) {}

  /** Reports `error`, or counts it when its code is over the burst of this window. */
  report(error: BusError): void {
    let w = this.windows.get(error.code);
    if (w === undefined) {
      w = { count: 0, last: undefined };
      this.windows.set(error.code, w);
    }
    w.count++;
    if (this.timer === undefined) {
      this.timer = setTimeout(this.endWindow, REPORT_WINDOW_MS);
      this.timer.unref();
    }
    if (w.count <= REPORT_BURST) this.emit(error);
    else w.last = error;
  }

  private readonly endWindow = (): void => {
    this.timer = undefined;
    this.flush();
  };

  /** Sums up what this window suppressed, now (also on close). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const windows = [...this.windows];
    this.windows.clear();
    for (const [code, w] of windows) {
      if (w.last === undefined) continue;
      const suppressed = w.count - REPORT_BURST;
      this.emit(
        new BusError(
          code,
          `${suppressed} more ${code} report${suppressed === 1 ? '' : 's'} in the last ${REPORT_WINDOW_MS} ms, not shown one by one; the last: ${w.last.message}`,
          { data: { suppressed } },
        ),
      );
    }
  }
}

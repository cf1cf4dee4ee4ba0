/**
 * How the CLI prints: durations, sizes, and a box table like `pm2 list`.
 *
 * @module
 */
import type { StatsBody } from '../management/types.js';

/** `3h 2m`, `5m 3s`, `12s`. */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** `45.2 MiB`. */
export function mib(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A table with a box around it, every column as wide as its widest cell. */
export function boxTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  const line = (l: string, m: string, r: string) =>
    `${l}${widths.map((w) => '─'.repeat(w + 2)).join(m)}${r}`;
  const row = (cells: readonly string[]) =>
    `│${cells.map((c, i) => ` ${c.padEnd(widths[i]!)} `).join('│')}│`;
  const [head, ...body] = rows;
  return [
    line('┌', '┬', '┐'),
    row(head ?? []),
    line('├', '┼', '┤'),
    ...body.map(row),
    line('└', '┴', '┘'),
  ].join('\n');
}

/** `clusterbus status`: a summary line and one row per worker. */
export function statusTable(stats: StatsBody, healthy: boolean): string {
  const p = stats.primary;
  const c = stats.cluster;
  const summary = [
    `primary ${p.pid}`,
    `up ${duration(p.uptimeMs)}`,
    `${c.workers} workers (${c.active} active, ${c.healthy} healthy; min ${c.min}, max ${c.max ?? '-'})`,
    `restarts ${p.restarts}`,
    `crashes ${p.crashes}`,
    `spawned ${p.workersSpawned}`,
    ...(p.requests === null ? [] : [`requests ${p.requests}`]),
  ].join(' · ');
  const rows = [
    [
      'slot',
      'id',
      'pid',
      'state',
      'health',
      'uptime',
      '↺',
      'rss',
      'heap',
      'el p99',
      'in flight',
      'served',
      'calls/s',
    ],
    ...stats.workers.map((w) => [
      String(w.slot),
      String(w.workerId),
      w.pid === null ? '-' : String(w.pid),
      w.state,
      w.healthy ? 'healthy' : 'UNHEALTHY',
      duration(w.uptimeMs),
      String(w.restarts),
      mib(w.rssBytes),
      mib(w.heapUsedBytes),
      w.eventLoopDelayMs === null ? '-' : `${w.eventLoopDelayMs.p99.toFixed(1)} ms`,
      w.inFlightCalls === null ? '-' : String(w.inFlightCalls),
      w.callsServed === null ? '-' : String(w.callsServed),
      w.callsPerSecond === null ? '-' : w.callsPerSecond.toFixed(1),
    ]),
  ];
  const restart =
    stats.restart === null
      ? []
      : [
          `last restart ${stats.restart.id}: ${stats.restart.state}, ${stats.restart.replaced}/${stats.restart.total} replaced`,
        ];
  return [summary, boxTable(rows), ...restart, healthy ? 'health: ok' : 'health: UNHEALTHY'].join(
    '\n',
  );
}

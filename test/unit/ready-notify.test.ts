/**
 * The ready notification without a cluster: `'ready'` on the IPC channel when there is one, a
 * channel that throws is a warning, and `systemd-notify` is not run without `NOTIFY_SOCKET`.
 * (systemd-notify itself, run for real from a fake on PATH: test/integration/ops-env.test.ts.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { notifyReady } from '../../src/supervisor/ready-notify.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('notifyReady', () => {
  it("sends 'ready' once on the channel, and runs nothing without NOTIFY_SOCKET (or with it empty)", async () => {
    const sent: unknown[] = [];
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    await notifyReady({ send: (m) => sent.push(m) > 0, env: {} });
    await notifyReady({ send: undefined, env: { NOTIFY_SOCKET: '' } });
    expect(sent).toEqual(['ready']);
    expect(warned).not.toHaveBeenCalled();
  });

  it('turns a channel that throws into a BusWarning, never a throw', async () => {
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const send = () => {
      throw new Error('channel closed');
    };
    await expect(notifyReady({ send, env: {} })).resolves.toBeUndefined();
    expect(warned).toHaveBeenCalledWith(
      "could not send 'ready' to the parent process: Error: channel closed",
      { type: 'BusWarning' },
    );
  });

  it('warns when NOTIFY_SOCKET is set and systemd-notify cannot be run', async () => {
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    await notifyReady({ env: { NOTIFY_SOCKET: '/run/x.sock', PATH: '/nonexistent' } });
    expect(warned).toHaveBeenCalledTimes(1);
    expect(String(warned.mock.calls[0]![0])).toContain('systemd-notify --ready failed');
  });
});

import { describe, expect, it } from 'vitest';
import { queueBadge } from '../queue/labels';
import { describeKernelStatus } from '../status/describe';
import { english } from '../translation';
import { makeEntry, makeStatus } from './fixtures';

describe('queueBadge', () => {
  it('shows a queued cell and its place (1-based)', () => {
    const entry = makeEntry();
    expect(queueBadge(entry, 0)).toMatchObject({
      state: 'queued',
      text: 'Queued #1'
    });
    expect(queueBadge(entry, 2)?.title).toBe(
      `Queued by alice: 2 entries ahead\nentry ${entry.id}\ncell id ${entry.cell_id}`
    );
    expect(queueBadge(entry, 1)?.title).toMatch(
      /^Queued by alice: 1 entry ahead\n/
    );
    expect(queueBadge(entry, null)?.text).toBe('Queued');
  });

  it('shows running, waiting for input and cancelled with its reason', () => {
    expect(queueBadge(makeEntry({ state: 'running' }), null)?.text).toBe(
      'Running'
    );
    const waiting = makeEntry({
      state: 'awaiting_input',
      input_request: { prompt: 'name? ', password: false }
    });
    expect(queueBadge(waiting, null)).toMatchObject({
      state: 'awaiting_input',
      text: 'Waiting for input'
    });
    expect(queueBadge(waiting, null)?.title).toMatch(/^name\? \n/);
    const cancelled = makeEntry({
      state: 'cancelled',
      reason: 'an earlier cell failed: NameError'
    });
    expect(queueBadge(cancelled, null)?.text).toBe(
      'Cancelled: an earlier cell failed: NameError'
    );
  });

  it('shows nothing for finished cells', () => {
    expect(queueBadge(makeEntry({ state: 'done' }), null)).toBeNull();
    expect(queueBadge(makeEntry({ state: 'error' }), null)).toBeNull();
    expect(queueBadge(undefined, null)).toBeNull();
  });

  it('says a cell was stopped when its kernel died', () => {
    const killed = makeEntry({
      state: 'error',
      reason: 'kernel died: killed by signal 9',
      error: { ename: 'DeadKernelError', evalue: '', traceback: [] }
    });
    expect(queueBadge(killed, null)).toMatchObject({
      state: 'killed',
      text: 'Stopped: kernel died: killed by signal 9'
    });
  });

  it('names people by display name; ids only in the tooltip', () => {
    const entry = makeEntry({
      owner: 'e7e62bc570a44589a6abd271a3e6008f',
      owner_name: 'Anonymous Io',
      state: 'cancelled',
      reason: 'an earlier cell failed: KeyboardInterrupt in cell [3]',
      caused_by: 'dbf13f00'
    });
    const queued = makeEntry({
      owner: 'e7e62bc570a44589a6abd271a3e6008f',
      owner_name: 'Anonymous Io'
    });
    const badge = queueBadge(entry, null)!;
    expect(badge.text).not.toContain('e7e62bc5');
    expect(badge.text).not.toContain('dbf13f00');
    expect(badge.title).toContain('cancelled because of entry dbf13f00');
    const title = queueBadge(queued, 0)!.title;
    expect(title).toMatch(/^Queued by Anonymous Io: next to run\n/);
    expect(title).toContain('user e7e62bc570a44589a6abd271a3e6008f');
  });
});

describe('describeKernelStatus', () => {
  it('says why a dead kernel died', () => {
    const text = describeKernelStatus(
      makeStatus({
        status: 'dead',
        execution_state: 'dead',
        reason: 'the kernel process exited (code -9)'
      })
    );
    expect(text.text).toBe(
      'python3: dead — the kernel process exited (code -9)'
    );
    expect(text.tone).toBe('dead');
    expect(text.title).toContain('reason: the kernel process exited (code -9)');
  });

  it('shows the life status and the execution state', () => {
    const busy = describeKernelStatus(
      makeStatus({
        execution_state: 'busy',
        queue: { running: 'e1', queued: 2 }
      })
    );
    expect(busy.text).toBe('python3: running · busy');
    expect(busy.tone).toBe('busy');
    expect(busy.title).toContain('queue: 1 running, 2 queued');
    expect(describeKernelStatus(undefined).text).toBe('Kernel: …');
  });

  it('keeps the last crash visible after an automatic restart', () => {
    const at = new Date(2024, 0, 1, 9, 5, 7);
    const back = describeKernelStatus(makeStatus(), english, {
      reason: 'the kernel process died (SIGKILL)',
      status: 'autorestarting',
      at
    });
    expect(back.text).toBe('python3: running · idle (crashed at 09:05:07)');
    expect(back.title).toContain(
      `last crash: the kernel process died (SIGKILL), at ${at.toLocaleString()}`
    );
    expect(back.tone).toBe('idle');
  });

  it('substitutes numbered placeholders', () => {
    expect(english.__('%2 before %1', 'b', 'a')).toBe('a before b');
    expect(english._n('%1 cell', '%1 cells', 3, 3)).toBe('3 cells');
  });
});

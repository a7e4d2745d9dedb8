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
      'Queued by alice: 2 entries ahead'
    );
    expect(queueBadge(entry, 1)?.title).toBe('Queued by alice: 1 entry ahead');
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
      title: 'name? '
    });
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

  it('substitutes numbered placeholders', () => {
    expect(english.__('%2 before %1', 'b', 'a')).toBe('a before b');
    expect(english._n('%1 cell', '%1 cells', 3, 3)).toBe('3 cells');
  });
});

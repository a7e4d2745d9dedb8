import type { EntryState, IEntry, IKernelStatus } from '../contract';

let counter = 0;

/**
 * An entry as the server would send it (override what the test cares about).
 */
export function makeEntry(overrides: Partial<IEntry> = {}): IEntry {
  counter += 1;
  const state: EntryState = overrides.state ?? 'queued';
  return {
    id: `e${counter}`,
    kernel_id: 'k1',
    path: 'nb.ipynb',
    cell_id: `c${counter}`,
    code: 'print(1)',
    state,
    position: state === 'queued' ? 0 : null,
    execution_count: null,
    error: null,
    reason: null,
    owner: 'alice',
    queued_at: new Date(2024, 0, 1, 0, 0, counter).toISOString(),
    started_at: null,
    finished_at: null,
    duration_ms: null,
    ...overrides
  };
}

/**
 * A kernel status as the server would send it.
 */
export function makeStatus(
  overrides: Partial<IKernelStatus> = {}
): IKernelStatus {
  return {
    kernel_id: 'k1',
    name: 'python3',
    status: 'running',
    execution_state: 'idle',
    reason: null,
    last_activity: '2024-01-01T00:00:00Z',
    queue: { running: null, queued: 0 },
    ...overrides
  };
}

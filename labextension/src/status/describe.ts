import type { IKernelStatus } from '../contract';
import type { IKernelCrash } from '../queue/queuestore';
import { english, ITrans } from '../translation';

/**
 * What the status bar says about a kernel.
 */
export interface IKernelStatusText {
  /** The short text shown in the status bar. */
  text: string;
  /** The tooltip: everything known. */
  title: string;
  /** A CSS modifier: `dead`, `busy`, `idle` or `other`. */
  tone: 'dead' | 'busy' | 'idle' | 'other';
}

/**
 * A time of day, as the status bar shows it (`14:03:27`).
 */
function clock(at: Date): string {
  return [at.getHours(), at.getMinutes(), at.getSeconds()]
    .map(n => `${n}`.padStart(2, '0'))
    .join(':');
}

/**
 * Describe a kernel's status in words; `undefined` while it is not known yet.
 *
 * `lastCrash` is the last death the page saw: once the kernel is back (an
 * automatic restart), the text still says it crashed, and when, and the
 * tooltip says why.
 */
export function describeKernelStatus(
  status: IKernelStatus | undefined,
  trans: ITrans = english,
  lastCrash?: IKernelCrash
): IKernelStatusText {
  if (!status) {
    return {
      text: trans.__('Kernel: …'),
      title: trans.__('The kernel status is not known yet'),
      tone: 'other'
    };
  }
  const dead = status.status === 'dead' || status.execution_state === 'dead';
  let text = trans.__('%1: %2', status.name || 'kernel', status.status);
  if (status.execution_state !== status.status) {
    text = trans.__('%1 · %2', text, status.execution_state);
  }
  if (status.reason) {
    text = trans.__('%1 — %2', text, status.reason);
  }
  const recovered = lastCrash !== undefined && !dead && !status.reason;
  if (recovered) {
    text = trans.__('%1 (crashed at %2)', text, clock(lastCrash.at));
  }
  const lines = [
    trans.__('Kernel %1', status.kernel_id),
    trans.__('process: %1', status.status),
    trans.__('execution: %1', status.execution_state)
  ];
  if (status.reason) {
    lines.push(trans.__('reason: %1', status.reason));
  }
  if (status.queue) {
    lines.push(
      status.queue.running
        ? trans.__('queue: 1 running, %1 queued', status.queue.queued)
        : trans.__('queue: %1 queued', status.queue.queued)
    );
  }
  if (status.last_activity) {
    lines.push(trans.__('last activity: %1', status.last_activity));
  }
  if (lastCrash) {
    lines.push(
      trans.__(
        'last crash: %1, at %2',
        lastCrash.reason,
        lastCrash.at.toLocaleString()
      )
    );
  }
  const tone = dead
    ? 'dead'
    : status.execution_state === 'busy'
      ? 'busy'
      : status.execution_state === 'idle'
        ? 'idle'
        : 'other';
  return { text, title: lines.join('\n'), tone };
}

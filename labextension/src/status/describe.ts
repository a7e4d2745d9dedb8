import type { IKernelStatus } from '../contract';
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
 * Describe a kernel's status in words; `undefined` while it is not known yet.
 */
export function describeKernelStatus(
  status: IKernelStatus | undefined,
  trans: ITrans = english
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
  const tone = dead
    ? 'dead'
    : status.execution_state === 'busy'
      ? 'busy'
      : status.execution_state === 'idle'
        ? 'idle'
        : 'other';
  return { text, title: lines.join('\n'), tone };
}

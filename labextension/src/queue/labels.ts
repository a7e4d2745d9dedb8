import type { IEntry } from '../contract';
import { english, ITrans } from '../translation';

/**
 * How a cell shows its latest queue entry.
 */
export interface IQueueBadge {
  /** A short text for the badge. */
  text: string;
  /** A longer explanation (tooltip). */
  title: string;
  /** The state, used as a CSS modifier (`jp-canvas-<state>`). */
  state: 'queued' | 'running' | 'awaiting_input' | 'cancelled';
}

/**
 * The badge of an entry at a given place in its kernel's queue, or null when
 * there is nothing to show (no entry, or it ended in done or error: the cell's
 * own outputs say how it went).
 */
export function queueBadge(
  entry: IEntry | undefined,
  position: number | null,
  trans: ITrans = english
): IQueueBadge | null {
  if (!entry) {
    return null;
  }
  switch (entry.state) {
    case 'queued': {
      if (position === null) {
        return {
          state: 'queued',
          text: trans.__('Queued'),
          title: trans.__('Queued by %1', entry.owner)
        };
      }
      const place = position + 1;
      return {
        state: 'queued',
        text: trans.__('Queued #%1', place),
        title:
          place === 1
            ? trans.__('Queued by %1: next to run', entry.owner)
            : trans._n(
                'Queued by %2: %1 entry ahead',
                'Queued by %2: %1 entries ahead',
                place - 1,
                place - 1,
                entry.owner
              )
      };
    }
    case 'running':
      return {
        state: 'running',
        text: trans.__('Running'),
        title: trans.__(
          'Running since %1 (queued by %2)',
          entry.started_at ?? '…',
          entry.owner
        )
      };
    case 'awaiting_input':
      return {
        state: 'awaiting_input',
        text: trans.__('Waiting for input'),
        title:
          entry.input_request?.prompt || trans.__('The code waits on input()')
      };
    case 'cancelled': {
      const reason = entry.reason || trans.__('cancelled');
      return {
        state: 'cancelled',
        text: trans.__('Cancelled: %1', reason),
        title: trans.__('Not run to the end: %1', reason)
      };
    }
    default:
      return null;
  }
}

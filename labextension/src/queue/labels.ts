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
  /**
   * The state, used as a CSS modifier (`jp-canvas-<state>`); `killed` is an
   * entry that ended in error without a traceback of its own (its kernel
   * died, or it could not start).
   */
  state: 'queued' | 'running' | 'awaiting_input' | 'cancelled' | 'killed';
}

/**
 * Who queued an entry, as people read it (the display name, else the name).
 */
export function ownerName(entry: IEntry): string {
  return entry.owner_name || entry.owner;
}

/**
 * The ids of an entry, for the end of a tooltip (never in the badge text).
 */
function ids(entry: IEntry, trans: ITrans): string {
  const lines = [trans.__('entry %1', entry.id)];
  if (entry.cell_id) {
    lines.push(trans.__('cell id %1', entry.cell_id));
  }
  if (entry.caused_by) {
    lines.push(trans.__('cancelled because of entry %1', entry.caused_by));
  }
  if (entry.owner_name && entry.owner_name !== entry.owner) {
    lines.push(trans.__('user %1', entry.owner));
  }
  return lines.join('\n');
}

/**
 * The badge of an entry at a given place in its kernel's queue, or null when
 * there is nothing to show (no entry, or it ended in done or in an error of
 * its code: the cell's own outputs say how it went).
 *
 * Texts name people by display name and cells by execution count; the ids
 * are only at the end of the tooltip.
 */
export function queueBadge(
  entry: IEntry | undefined,
  position: number | null,
  trans: ITrans = english
): IQueueBadge | null {
  if (!entry) {
    return null;
  }
  const badge = describe(entry, position, trans);
  if (badge) {
    badge.title = `${badge.title}\n${ids(entry, trans)}`;
  }
  return badge;
}

function describe(
  entry: IEntry,
  position: number | null,
  trans: ITrans
): IQueueBadge | null {
  const owner = ownerName(entry);
  switch (entry.state) {
    case 'queued': {
      if (position === null) {
        return {
          state: 'queued',
          text: trans.__('Queued'),
          title: trans.__('Queued by %1', owner)
        };
      }
      const place = position + 1;
      return {
        state: 'queued',
        text: trans.__('Queued #%1', place),
        title:
          place === 1
            ? trans.__('Queued by %1: next to run', owner)
            : trans._n(
                'Queued by %2: %1 entry ahead',
                'Queued by %2: %1 entries ahead',
                place - 1,
                place - 1,
                owner
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
          owner
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
    case 'error':
      // An error of the code itself shows as its traceback in the outputs;
      // an entry stopped from outside (its kernel died) says why here too.
      if (!entry.reason) {
        return null;
      }
      return {
        state: 'killed',
        text: trans.__('Stopped: %1', entry.reason),
        title: trans.__('Stopped before its end: %1', entry.reason)
      };
    default:
      return null;
  }
}

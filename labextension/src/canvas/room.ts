import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import type { ICellPlacement } from '../contract';

/**
 * What the canvas room holds, as plain data.
 */
export interface IRoomLayout {
  cells: Record<string, Partial<ICellPlacement>>;
  np_graph: Record<string, string[]>;
  pc_graph: Record<string, string[]>;
}

const PLACEMENT_KEYS: (keyof ICellPlacement)[] = [
  'x',
  'y',
  'width',
  'height',
  'collapsed',
  'placed'
];

function asStringLists(value: unknown): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  if (!value || typeof value !== 'object') {
    return result;
  }
  for (const [key, list] of Object.entries(value as Record<string, unknown>)) {
    if (Array.isArray(list)) {
      result[key] = list.filter(
        (item): item is string => typeof item === 'string'
      );
    }
  }
  return result;
}

/**
 * The valid placement keys of a room value (a Y map or a plain object).
 */
function placementOf(value: unknown): Partial<ICellPlacement> | null {
  const raw = value instanceof Y.Map ? value.toJSON() : value;
  if (!raw || typeof raw !== 'object') {
    return null;
  }
  const placement: Partial<ICellPlacement> = {};
  for (const key of PLACEMENT_KEYS) {
    const v = (raw as Record<string, unknown>)[key];
    const valid =
      key === 'collapsed' || key === 'placed'
        ? typeof v === 'boolean'
        : typeof v === 'number' && Number.isFinite(v);
    if (valid) {
      (placement as Record<string, unknown>)[key] = v;
    }
  }
  return placement;
}

/**
 * Read the layout out of a canvas room document.
 */
export function readRoomLayout(doc: Y.Doc): IRoomLayout {
  const cells: Record<string, Partial<ICellPlacement>> = {};
  doc.getMap('cells').forEach((value, id) => {
    const placement = placementOf(value);
    if (placement) {
      cells[id] = placement;
    }
  });
  return {
    cells,
    np_graph: asStringLists(doc.getMap('np_graph').toJSON()),
    pc_graph: asStringLists(doc.getMap('pc_graph').toJSON())
  };
}

/**
 * Write a cell's placement into a canvas room document (one transaction).
 *
 * A cell the room already has keeps its map, and only the changed keys are
 * set, so concurrent moves of other cells never conflict; a cell it does not
 * have gets a new map with the whole placement.
 */
export function writePlacement(
  doc: Y.Doc,
  cellId: string,
  placement: Partial<ICellPlacement>,
  full: ICellPlacement,
  origin: unknown = null
): void {
  doc.transact(() => {
    const cells = doc.getMap('cells');
    const current = cells.get(cellId);
    if (current instanceof Y.Map) {
      for (const key of PLACEMENT_KEYS) {
        const value = placement[key];
        if (value !== undefined && current.get(key) !== value) {
          current.set(key, value);
        }
      }
      return;
    }
    const map = new Y.Map<unknown>();
    const merged: ICellPlacement = {
      ...full,
      ...placementOf(current),
      ...placement
    };
    for (const key of PLACEMENT_KEYS) {
      if (merged[key] !== undefined) {
        map.set(key, merged[key]);
      }
    }
    cells.set(cellId, map);
  }, origin);
}

/**
 * A connection to a notebook's canvas Y room (`api/canvas/room/<file_id>`):
 * standard y-websocket sync and awareness.
 */
export class CanvasRoom implements IDisposable {
  constructor(options: CanvasRoom.IOptions) {
    this.doc = new Y.Doc();
    this._provider = new WebsocketProvider(
      options.serverUrl,
      options.roomName,
      this.doc,
      {
        params: options.params ?? {},
        // Peers in other tabs must see moves through the server, like everyone else.
        disableBc: true,
        WebSocketPolyfill: options.WebSocket as unknown as typeof WebSocket
      }
    );
    this.synced = new Promise(resolve => {
      if (this._provider.synced) {
        resolve();
        return;
      }
      const onSync = (isSynced: boolean) => {
        if (isSynced) {
          this._provider.off('sync', onSync);
          resolve();
        }
      };
      this._provider.on('sync', onSync);
    });
    this._provider.on('status', ({ status }: { status: string }) => {
      this._status = status;
      this._statusChanged.emit(status);
    });
    const observer = () => this._changed.emit();
    for (const name of ['cells', 'np_graph', 'pc_graph']) {
      const type = this.doc.getMap(name);
      type.observeDeep(observer);
      this._unobserve.push(() => type.unobserveDeep(observer));
    }
  }

  /**
   * The room's document.
   */
  readonly doc: Y.Doc;

  /**
   * Resolves once the first sync with the server is done.
   */
  readonly synced: Promise<void>;

  /**
   * Emitted after any change of the layout (local or remote).
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Emitted when the connection status changes (`connecting`, `connected`, `disconnected`).
   */
  get statusChanged(): ISignal<this, string> {
    return this._statusChanged;
  }

  /**
   * The connection status.
   */
  get status(): string {
    return this._status;
  }

  /**
   * Whether the room was disposed.
   */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * The layout as plain data.
   */
  layout(): IRoomLayout {
    return readRoomLayout(this.doc);
  }

  /**
   * Change a cell's placement for every peer.
   */
  place(
    cellId: string,
    placement: Partial<ICellPlacement>,
    full: ICellPlacement
  ): void {
    writePlacement(this.doc, cellId, placement, full, this);
  }

  /**
   * Leave the room.
   */
  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._unobserve.forEach(fn => fn());
    this._provider.destroy();
    this.doc.destroy();
    Signal.clearData(this);
  }

  private _provider: WebsocketProvider;
  private _status = 'connecting';
  private _disposed = false;
  private _unobserve: (() => void)[] = [];
  private _changed = new Signal<this, void>(this);
  private _statusChanged = new Signal<this, string>(this);
}

/**
 * A namespace for CanvasRoom statics.
 */
export namespace CanvasRoom {
  /**
   * Options of a CanvasRoom.
   */
  export interface IOptions {
    /** The websocket URL of the rooms (`ws://…/api/canvas/room`). */
    serverUrl: string;
    /** The room: the notebook's file id. */
    roomName: string;
    /** Query parameters (the token, when the server settings append it). */
    params?: Record<string, string>;
    /** The websocket constructor. */
    WebSocket?: unknown;
  }
}

/**
 * The shapes of jupyter_canvas's public contract (shared/api-contract.md,
 * docs/rest-api.yaml) as the frontend reads them.
 *
 * Fields the frontend does not use are still listed, so this file reads as
 * the contract does.
 */

/**
 * The life of one queued piece of code.
 */
export type EntryState =
  'queued' | 'running' | 'awaiting_input' | 'done' | 'error' | 'cancelled';

/**
 * States nothing can happen to any more.
 */
export const TERMINAL_STATES: ReadonlySet<EntryState> = new Set<EntryState>([
  'done',
  'error',
  'cancelled'
]);

/**
 * Whether an entry in this state is finished.
 */
export function isTerminal(state: EntryState): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * An nbformat v4 output, as the server sends it.
 */
export type Output = { output_type: string } & Record<string, unknown>;

/**
 * The error an entry ended with.
 */
export interface IEntryError {
  ename: string;
  evalue: string;
  traceback: string[];
}

/**
 * The `input()` an entry waits on (while `awaiting_input`).
 */
export interface IInputRequest {
  prompt: string;
  password: boolean;
}

/**
 * One queued piece of code.
 */
export interface IEntry {
  id: string;
  kernel_id: string;
  path: string | null;
  cell_id: string | null;
  code: string;
  state: EntryState;
  /** 0-based place among the kernel's queued entries; null unless queued. */
  position: number | null;
  execution_count: number | null;
  /** Absent in list answers and events. */
  outputs?: Output[];
  error: IEntryError | null;
  /** Why it was cancelled, in words. */
  reason: string | null;
  owner: string;
  /** The owner's display name (v1.1 addition; absent from older servers). */
  owner_name?: string;
  /** The entry whose failure cancelled this one (v1.1 addition). */
  caused_by?: string | null;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  input_request?: IInputRequest | null;
}

/**
 * The life of a kernel process.
 */
export type KernelLifeStatus =
  | 'starting'
  | 'running'
  | 'restarting'
  | 'autorestarting'
  | 'terminating'
  | 'dead'
  | 'unknown';

/**
 * What a kernel's IOPub says it does.
 */
export type KernelExecutionState =
  'starting' | 'idle' | 'busy' | 'dead' | 'unknown';

/**
 * `GET /api/kernels/<id>/status` and the `kernel` event.
 */
export interface IKernelStatus {
  kernel_id: string;
  name: string;
  status: KernelLifeStatus;
  execution_state: KernelExecutionState;
  /** Why it is dead or failed to start; null otherwise. */
  reason: string | null;
  last_activity: string | null;
  queue: { running: string | null; queued: number };
}

/**
 * `{"type": "entry"}`: an entry changed state.
 */
export interface IEntryEvent {
  seq: number;
  type: 'entry';
  entry: IEntry;
}

/**
 * `{"type": "output"}`: an entry produced an output.
 */
export interface IOutputEvent {
  seq: number;
  type: 'output';
  entry_id: string;
  kernel_id: string;
  path: string | null;
  cell_id: string | null;
  output: Output;
}

/**
 * `{"type": "clear_output"}`: an entry cleared its outputs.
 */
export interface IClearOutputEvent {
  seq: number;
  type: 'clear_output';
  entry_id: string;
  kernel_id: string;
  wait: boolean;
}

/**
 * `{"type": "kernel"}`: a kernel's status, execution state or reason changed.
 */
export interface IKernelEvent {
  seq: number;
  type: 'kernel';
  status: IKernelStatus;
}

/**
 * `{"type": "gap"}`: the `since` asked for is older than what the server keeps.
 */
export interface IGapEvent {
  type: 'gap';
  oldest: number;
}

/**
 * One frame of the events websocket.
 */
export type QueueEvent =
  IEntryEvent | IOutputEvent | IClearOutputEvent | IKernelEvent | IGapEvent;

/**
 * Which cells of a notebook `select` queues.
 */
export type CellSelection = 'all' | { from: string } | { group: string };

/**
 * The body of `POST /api/queue`.
 */
export interface IQueueRequest {
  kernel_id?: string;
  path?: string;
  code?: string;
  cell_id?: string;
  cell_ids?: string[];
  select?: CellSelection;
  stop_on_error?: boolean;
}

/**
 * Where one cell sits on the canvas.
 */
export interface ICellPlacement {
  x: number;
  y: number;
  width: number;
  height: number;
  collapsed: boolean;
  /**
   * Addition: whether someone chose this place (moved the cell). `false` for a
   * default place, which the canvas lays out again as the cards grow; absent
   * from servers that predate it.
   */
  placed?: boolean;
}

/**
 * `GET /api/canvas/layout/<path>`.
 */
export interface ICanvasLayout {
  path: string;
  file_id: string;
  /** The Y room, relative to the server's base URL: `api/canvas/room/<file_id>`. */
  room: string;
  cells: Record<string, ICellPlacement>;
  np_graph: Record<string, string[]>;
  pc_graph: Record<string, string[]>;
}

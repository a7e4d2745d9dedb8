import type { ICellPlacement } from '../contract';
import { groupFrames, IFrame, IRect, union } from './geometry';
import type { IViewport } from './viewport';

/**
 * The canvas layout model: where every card goes, with no DOM.
 *
 * By default each top-level heading group is a column, the columns side by
 * side (the cells before the first heading make a column of their own); in a
 * column the cards go top to bottom in notebook order, each as tall as its
 * content, a nested group indented and padded for its frame. A card the user
 * placed (`placed` in the room) stays where it was put; the other cards flow
 * around it, so no card ever covers another unless the user dropped it there.
 */

/**
 * Sizes of the layout (plane units).
 */
export interface ILayoutOptions {
  /** Width of a card that has none stored. */
  width: number;
  /** Height of a card not measured yet and with none stored. */
  height: number;
  /** Between two cards of a column. */
  gap: number;
  /** Between two columns. */
  columnGap: number;
  /** Room left around a heading group for its frame. */
  framePadding: number;
}

export const LAYOUT_DEFAULTS: ILayoutOptions = {
  width: 600,
  height: 120,
  gap: 20,
  columnGap: 80,
  framePadding: 20
};

/**
 * The grid a dropped card snaps to.
 */
export const GRID = 20;

/**
 * The smallest code text, in screen pixels, the default view may show.
 */
export const MIN_CODE_PX = 11;

/**
 * What the layout is computed from.
 */
export interface ILayoutInput {
  /** Every cell id, in notebook order. */
  order: readonly string[];
  /** Heading cell id → the cells it owns (the contract's `pc_graph`). */
  pcGraph: Readonly<Record<string, readonly string[]>>;
  /** The places the room (or the REST layout) holds, by cell id. */
  stored: Readonly<Record<string, Partial<ICellPlacement> | undefined>>;
  /** The measured height of each card (plane units); others use their stored height. */
  heights?: ReadonlyMap<string, number>;
  options?: Partial<ILayoutOptions>;
}

/**
 * Where one card is drawn.
 */
export interface ICardBox extends IRect {
  id: string;
  /** The user put it there: layout never moves it. */
  placed: boolean;
  /** Folded (a heading folded hides its group). */
  collapsed: boolean;
  /** Inside a folded group: not drawn. */
  hidden: boolean;
  /** How many heading frames hold it. */
  depth: number;
  /** The column it belongs to (by notebook structure). */
  column: number;
}

/**
 * The layout: every card's box, the columns and the frames of the groups.
 */
export interface ILayout {
  boxes: Map<string, ICardBox>;
  columns: IRect[];
  frames: IFrame[];
}

/**
 * The top-level runs of a notebook: the cells before the first heading, then
 * one run per top-level heading (the heading and, through `pcGraph`, its group).
 */
export function columnRoots(
  order: readonly string[],
  pcGraph: Readonly<Record<string, readonly string[]>>
): string[][] {
  const children = new Set<string>();
  for (const kids of Object.values(pcGraph)) {
    kids.forEach(kid => children.add(kid));
  }
  const columns: string[][] = [];
  let column: string[] = [];
  for (const id of order) {
    if (children.has(id)) {
      continue;
    }
    if (pcGraph[id] !== undefined && column.length) {
      columns.push(column);
      column = [];
    }
    column.push(id);
  }
  if (column.length) {
    columns.push(column);
  }
  return columns;
}

/**
 * Lay the cards out.
 */
export function layoutCards(input: ILayoutInput): ILayout {
  const opts = { ...LAYOUT_DEFAULTS, ...input.options };
  const pad = opts.framePadding;
  const pc = input.pcGraph;
  const boxes = new Map<string, ICardBox>();
  const known = new Set(input.order);

  const base = (id: string, depth: number, column: number): ICardBox => {
    const stored = input.stored[id] ?? {};
    const measured = input.heights?.get(id);
    return {
      id,
      x: 0,
      y: 0,
      width: positiveOr(stored.width, opts.width),
      height:
        measured !== undefined && measured > 0
          ? measured
          : positiveOr(stored.height, opts.height),
      placed: isPlaced(stored),
      collapsed: stored.collapsed === true,
      hidden: false,
      depth,
      column
    };
  };

  // The cards the user placed stay; the others flow around them.
  const fixed: IRect[] = [];
  const hiddenIds = new Set<string>();
  for (const id of input.order) {
    if (pc[id] !== undefined && input.stored[id]?.collapsed === true) {
      for (const member of membersOf(pc, id)) {
        hiddenIds.add(member);
      }
    }
  }
  for (const id of input.order) {
    const stored = input.stored[id];
    if (stored && isPlaced(stored) && !hiddenIds.has(id)) {
      fixed.push({
        x: stored.x as number,
        y: stored.y as number,
        width: positiveOr(stored.width, opts.width),
        height: base(id, 0, 0).height
      });
    }
  }

  const columns: IRect[] = [];
  let x0 = 0;
  columnRoots(input.order, pc).forEach((roots, index) => {
    let y = 0;
    let right = x0;
    const seen = new Set<string>();
    const flow = (id: string, depth: number) => {
      if (seen.has(id) || !known.has(id)) {
        return; // a malformed graph (a cycle, an unknown id)
      }
      seen.add(id);
      const heading = pc[id] !== undefined;
      const box = base(id, depth, index);
      if (hiddenIds.has(id)) {
        box.hidden = true;
      }
      if (heading && !box.hidden) {
        y += pad; // the frame's top
      }
      if (box.placed) {
        const stored = input.stored[id]!;
        box.x = stored.x as number;
        box.y = stored.y as number;
      } else {
        box.x = x0 + depth * pad;
        box.y = box.hidden
          ? y
          : freeY(box.x, y, box.width, box.height, fixed, opts.gap);
        if (!box.hidden) {
          y = box.y + box.height + opts.gap;
        }
        // Folded cards keep their room: folding a group never moves the next column.
        right = Math.max(right, box.x + box.width + depth * pad);
      }
      boxes.set(id, box);
      if (heading) {
        for (const child of pc[id]) {
          flow(child, pc[child] !== undefined ? depth + 1 : depth);
        }
        if (!box.hidden) {
          y += pad; // the frame's bottom
        }
      }
    };
    for (const id of roots) {
      flow(id, pc[id] !== undefined ? 1 : 0);
    }
    columns.push({ x: x0, y: 0, width: right - x0, height: y });
    if (right > x0) {
      x0 = right + opts.columnGap;
    }
  });
  // Cells no run reached (a graph that names cells the notebook lacks): under everything.
  let bottom = Math.max(0, ...[...boxes.values()].map(b => b.y + b.height));
  for (const id of input.order) {
    if (!boxes.has(id)) {
      const box = base(id, 0, columns.length);
      const stored = input.stored[id];
      if (box.placed && stored) {
        box.x = stored.x as number;
        box.y = stored.y as number;
      } else {
        box.y = bottom + opts.gap;
        bottom = box.y + box.height;
      }
      boxes.set(id, box);
    }
  }

  return { boxes, columns, frames: frames(pc, boxes, pad) };
}

/**
 * The frames of the heading groups around their cards in the columns: a card
 * the user dragged elsewhere leaves its group's frame, unless every card of
 * the group was placed (a layout made by hand, or by Ganimede).
 */
function frames(
  pcGraph: Readonly<Record<string, readonly string[]>>,
  boxes: ReadonlyMap<string, ICardBox>,
  padding: number
): IFrame[] {
  const flowing = new Map<string, IRect>();
  const all = new Map<string, IRect>();
  for (const [id, box] of boxes) {
    if (!box.hidden) {
      all.set(id, box);
      if (!box.placed) {
        flowing.set(id, box);
      }
    }
  }
  const result = groupFrames(pcGraph, flowing, padding);
  const framed = new Set(result.map(f => f.headingId));
  for (const frame of groupFrames(pcGraph, all, padding)) {
    if (!framed.has(frame.headingId)) {
      result.push(frame);
    }
  }
  return result.sort((a, b) => b.depth - a.depth);
}

/**
 * The first y at or below `y` where a `width` × `height` box at `x` touches
 * none of `fixed` (keeping `gap` from them).
 */
export function freeY(
  x: number,
  y: number,
  width: number,
  height: number,
  fixed: readonly IRect[],
  gap: number
): number {
  let top = y;
  for (let guard = 0; guard <= fixed.length; guard++) {
    const hit = fixed.find(
      r =>
        x < r.x + r.width + gap &&
        r.x < x + width + gap &&
        top < r.y + r.height + gap &&
        r.y < top + height + gap
    );
    if (!hit) {
      return top;
    }
    top = hit.y + hit.height + gap;
  }
  return top;
}

/**
 * Every cell a heading owns, at any depth.
 */
export function membersOf(
  pcGraph: Readonly<Record<string, readonly string[]>>,
  headingId: string
): string[] {
  const members: string[] = [];
  const seen = new Set<string>([headingId]);
  const pending = [...(pcGraph[headingId] ?? [])];
  while (pending.length) {
    const id = pending.shift()!;
    if (seen.has(id)) {
      continue;
    }
    seen.add(id);
    members.push(id);
    pending.push(...(pcGraph[id] ?? []));
  }
  return members;
}

/**
 * Whether two boxes overlap (touching edges do not).
 */
export function overlaps(a: IRect, b: IRect): boolean {
  return (
    a.x < b.x + b.width &&
    b.x < a.x + a.width &&
    a.y < b.y + b.height &&
    b.y < a.y + a.height
  );
}

/**
 * A coordinate on the grid.
 */
export function snap(value: number, grid = GRID): number {
  return Math.round(value / grid) * grid;
}

/**
 * The view that shows `bounds` in a `width` × `height` view as large as fits,
 * never zoomed in past 1 and never so far out that code text (`codePx` high
 * at zoom 1) is drawn smaller than `minCodePx`. When everything cannot fit at
 * that zoom, the top-left of the content is shown.
 */
export function fitView(
  bounds: IRect,
  width: number,
  height: number,
  codePx: number,
  minCodePx = MIN_CODE_PX,
  margin = 24
): IViewport {
  const usableW = Math.max(1, width - 2 * margin);
  const usableH = Math.max(1, height - 2 * margin);
  const fits = Math.min(
    usableW / Math.max(1, bounds.width),
    usableH / Math.max(1, bounds.height)
  );
  const readable = Math.min(1, minCodePx / Math.max(1, codePx));
  const scale = Math.min(1, Math.max(fits, readable));
  const spareW = usableW - bounds.width * scale;
  return {
    scale,
    x: margin - bounds.x * scale + Math.max(0, spareW / 2),
    y: margin - bounds.y * scale
  };
}

/**
 * A direction of the arrow keys.
 */
export type Direction = 'up' | 'down' | 'left' | 'right';

/**
 * The card the arrow key goes to from `fromId`: the nearest visible box whose
 * centre lies in that direction (distance along the direction, plus twice the
 * distance across it, so a card straight ahead wins over a closer one aside).
 */
export function neighbour(
  boxes: ReadonlyMap<string, ICardBox>,
  fromId: string,
  direction: Direction
): string | null {
  const from = boxes.get(fromId);
  if (!from) {
    return null;
  }
  const cx = from.x + from.width / 2;
  const cy = from.y + from.height / 2;
  let best: string | null = null;
  let bestScore = Infinity;
  for (const box of boxes.values()) {
    if (box.id === fromId || box.hidden) {
      continue;
    }
    const dx = box.x + box.width / 2 - cx;
    const dy = box.y + box.height / 2 - cy;
    let along: number;
    let across: number;
    switch (direction) {
      case 'up':
        along = -dy;
        across = Math.abs(dx);
        break;
      case 'down':
        along = dy;
        across = Math.abs(dx);
        break;
      case 'left':
        along = -dx;
        across = Math.abs(dy);
        break;
      case 'right':
        along = dx;
        across = Math.abs(dy);
        break;
    }
    if (along <= 0) {
      continue;
    }
    const score = along + 2 * across;
    if (score < bestScore) {
      bestScore = score;
      best = box.id;
    }
  }
  return best;
}

/**
 * The bounds of the drawn boxes and frames.
 */
export function contentBounds(layout: ILayout): IRect | null {
  const rects: IRect[] = layout.frames.map(f => f.rect);
  for (const box of layout.boxes.values()) {
    if (!box.hidden) {
      rects.push(box);
    }
  }
  return union(rects);
}

function isPlaced(stored: Partial<ICellPlacement>): boolean {
  // A place without the field comes from a server that did not tell: taken as chosen.
  return (
    stored.placed !== false &&
    isFiniteNumber(stored.x) &&
    isFiniteNumber(stored.y)
  );
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function positiveOr(value: unknown, fallback: number): number {
  return isFiniteNumber(value) && value > 0 ? value : fallback;
}

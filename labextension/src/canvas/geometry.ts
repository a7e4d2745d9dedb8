import type { ICellPlacement } from '../contract';

/**
 * A rectangle on the canvas plane.
 */
export interface IRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A frame drawn around a markdown heading's group.
 */
export interface IFrame {
  headingId: string;
  rect: IRect;
  /** How many heading levels are nested inside (0 for a group with no sub-heading). */
  depth: number;
}

/**
 * An edge of the `np_graph` chain, from the bottom of one box to the top of the next.
 */
export interface IEdge {
  from: string;
  to: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/**
 * Where a cell goes when nothing says where it is.
 */
export const DEFAULT_PLACEMENT: ICellPlacement = {
  x: 0,
  y: 0,
  width: 600,
  height: 120,
  collapsed: false
};

/**
 * The vertical space left between a placed cell and the next one.
 */
export const STACK_GAP = 40;

/**
 * Placements for every cell, in notebook order: a known placement is kept; a
 * cell without one goes below the cell before it (the first at the origin).
 */
export function placeCells(
  cellIds: readonly string[],
  known: Readonly<Record<string, Partial<ICellPlacement> | undefined>>
): Map<string, ICellPlacement> {
  const placed = new Map<string, ICellPlacement>();
  let previous: ICellPlacement | null = null;
  for (const id of cellIds) {
    const stored = known[id];
    let placement: ICellPlacement;
    if (stored && isFiniteNumber(stored.x) && isFiniteNumber(stored.y)) {
      placement = {
        x: stored.x,
        y: stored.y,
        width: positiveOr(stored.width, DEFAULT_PLACEMENT.width),
        height: positiveOr(stored.height, DEFAULT_PLACEMENT.height),
        collapsed: stored.collapsed === true
      };
    } else if (previous) {
      placement = {
        ...DEFAULT_PLACEMENT,
        x: previous.x,
        y: previous.y + previous.height + STACK_GAP
      };
    } else {
      placement = { ...DEFAULT_PLACEMENT };
    }
    placed.set(id, placement);
    previous = placement;
  }
  return placed;
}

/**
 * The smallest rectangle holding all of `rects` (null for none).
 */
export function union(rects: readonly IRect[]): IRect | null {
  if (!rects.length) {
    return null;
  }
  let left = Infinity;
  let top = Infinity;
  let right = -Infinity;
  let bottom = -Infinity;
  for (const r of rects) {
    left = Math.min(left, r.x);
    top = Math.min(top, r.y);
    right = Math.max(right, r.x + r.width);
    bottom = Math.max(bottom, r.y + r.height);
  }
  return { x: left, y: top, width: right - left, height: bottom - top };
}

/**
 * Grow a rectangle by `by` on every side.
 */
export function inflate(rect: IRect, by: number): IRect {
  return {
    x: rect.x - by,
    y: rect.y - by,
    width: rect.width + 2 * by,
    height: rect.height + 2 * by
  };
}

/**
 * The frames of the heading groups of `pcGraph`: each frame holds the heading's
 * card, its children's cards and its sub-headings' frames, `padding` wider, so
 * nested groups draw as nested frames.
 */
export function groupFrames(
  pcGraph: Readonly<Record<string, readonly string[]>>,
  rects: ReadonlyMap<string, IRect>,
  padding = 16
): IFrame[] {
  const frames = new Map<string, IFrame | null>();
  const visiting = new Set<string>();
  const frameOf = (headingId: string): IFrame | null => {
    if (frames.has(headingId)) {
      return frames.get(headingId)!;
    }
    if (visiting.has(headingId)) {
      return null; // a cycle: the graph is malformed, draw what we can
    }
    visiting.add(headingId);
    const parts: IRect[] = [];
    let depth = 0;
    const own = rects.get(headingId);
    if (own) {
      parts.push(own);
    }
    for (const child of pcGraph[headingId] ?? []) {
      if (pcGraph[child] !== undefined) {
        const sub = frameOf(child);
        if (sub) {
          parts.push(sub.rect);
          depth = Math.max(depth, sub.depth + 1);
          continue;
        }
      }
      const rect = rects.get(child);
      if (rect) {
        parts.push(rect);
      }
    }
    visiting.delete(headingId);
    const bounds = union(parts);
    const frame = bounds
      ? { headingId, rect: inflate(bounds, padding), depth }
      : null;
    frames.set(headingId, frame);
    return frame;
  };
  const result: IFrame[] = [];
  for (const headingId of Object.keys(pcGraph)) {
    const frame = frameOf(headingId);
    if (frame) {
      result.push(frame);
    }
  }
  // Outer frames first, so inner ones are drawn over them.
  return result.sort((a, b) => b.depth - a.depth);
}

/**
 * The edges of the `np_graph` chain between boxes (a heading's box is its frame).
 */
export function chainEdges(
  npGraph: Readonly<Record<string, readonly string[]>>,
  boxes: ReadonlyMap<string, IRect>
): IEdge[] {
  const edges: IEdge[] = [];
  for (const [from, targets] of Object.entries(npGraph)) {
    const a = boxes.get(from);
    if (!a) {
      continue;
    }
    for (const to of targets) {
      const b = boxes.get(to);
      if (!b) {
        continue;
      }
      edges.push({
        from,
        to,
        x1: a.x + a.width / 2,
        y1: a.y + a.height,
        x2: b.x + b.width / 2,
        y2: b.y
      });
    }
  }
  return edges;
}

/**
 * An SVG path for an edge: a vertical S-curve.
 */
export function edgePath(edge: IEdge): string {
  const bend = Math.max(30, Math.abs(edge.y2 - edge.y1) / 2);
  return (
    `M ${edge.x1} ${edge.y1} ` +
    `C ${edge.x1} ${edge.y1 + bend}, ${edge.x2} ${edge.y2 - bend}, ${edge.x2} ${edge.y2}`
  );
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function positiveOr(value: unknown, fallback: number): number {
  return isFiniteNumber(value) && value > 0 ? value : fallback;
}

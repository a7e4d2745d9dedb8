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
 * An edge of the `np_graph` chain: from the bottom of one box to the top of the
 * next, or, when the next box stands beside it (the next column), from its
 * right side to the next one's left side.
 */
export interface IEdge {
  from: string;
  to: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** Side to side (the boxes stand beside each other). */
  side?: boolean;
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
      if (b.x >= a.x + a.width && b.y < a.y + a.height) {
        edges.push({
          from,
          to,
          x1: a.x + a.width,
          y1: a.y + SIDE_EDGE_DROP,
          x2: b.x,
          y2: b.y + SIDE_EDGE_DROP,
          side: true
        });
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
 * How far below the top of two boxes side by side their edge runs.
 */
const SIDE_EDGE_DROP = 30;

/**
 * An SVG path for an edge: a vertical S-curve (a horizontal one side to side).
 */
export function edgePath(edge: IEdge): string {
  if (edge.side) {
    const bend = Math.max(20, Math.abs(edge.x2 - edge.x1) / 2);
    return (
      `M ${edge.x1} ${edge.y1} ` +
      `C ${edge.x1 + bend} ${edge.y1}, ${edge.x2 - bend} ${edge.y2}, ${edge.x2} ${edge.y2}`
    );
  }
  const bend = Math.max(30, Math.abs(edge.y2 - edge.y1) / 2);
  return (
    `M ${edge.x1} ${edge.y1} ` +
    `C ${edge.x1} ${edge.y1 + bend}, ${edge.x2} ${edge.y2 - bend}, ${edge.x2} ${edge.y2}`
  );
}

import { describe, expect, it } from 'vitest';
import type { ICellPlacement } from '../contract';
import { computeGraphs } from '../canvas/graphs';
import {
  columnRoots,
  contentBounds,
  fitView,
  ICardBox,
  ILayoutInput,
  layoutCards,
  MIN_CODE_PX,
  neighbour,
  overlaps,
  snap
} from '../canvas/layout';

const md = (id: string, source: string) => ({ id, type: 'markdown', source });
const code = (id: string) => ({ id, type: 'code', source: 'x = 1' });

/**
 * Three headings (one nested), eight cells under them, a cell before them.
 */
const CELLS = [
  code('intro'),
  md('A', '# A'),
  code('a1'),
  code('a2'),
  md('B', '## B'),
  code('b1'),
  md('C', '# C'),
  code('c1'),
  code('c2'),
  code('c3')
];
const ORDER = CELLS.map(c => c.id);
const PC = computeGraphs(CELLS).pc_graph;

/** Default places, as the server gives them: none placed. */
function defaults(): Record<string, Partial<ICellPlacement>> {
  const stored: Record<string, Partial<ICellPlacement>> = {};
  ORDER.forEach((id, i) => {
    stored[id] = {
      x: 0,
      y: i * 140,
      width: 600,
      height: 120,
      collapsed: false,
      placed: false
    };
  });
  return stored;
}

function layout(
  stored = defaults(),
  heights: Record<string, number> = {}
): Map<string, ICardBox> {
  const input: ILayoutInput = {
    order: ORDER,
    pcGraph: PC,
    stored,
    heights: new Map(Object.entries(heights))
  };
  return layoutCards(input).boxes;
}

function expectNoOverlap(boxes: Map<string, ICardBox>): void {
  const shown = [...boxes.values()].filter(b => !b.hidden);
  for (let i = 0; i < shown.length; i++) {
    for (let j = i + 1; j < shown.length; j++) {
      expect(
        overlaps(shown[i], shown[j]),
        `${shown[i].id} and ${shown[j].id} overlap`
      ).toBe(false);
    }
  }
}

describe('layout model', () => {
  it('makes a column of each top-level heading group, side by side', () => {
    expect(columnRoots(ORDER, PC)).toEqual([['intro'], ['A'], ['C']]);
    const boxes = layout();
    const x = (id: string) => boxes.get(id)!.x;
    // One column per run: the cell before the headings, A's group, C's group.
    expect(new Set(['intro'].map(x)).size).toBe(1);
    expect(x('A')).toBe(x('a1'));
    expect(x('a1')).toBe(x('a2'));
    expect(x('c1')).toBe(x('C'));
    expect(x('intro')).toBeLessThan(x('A'));
    expect(x('A') + 600).toBeLessThan(x('C'));
    // The nested group sits inside A's column, indented for its frame.
    expect(x('B')).toBeGreaterThan(x('A'));
    expect(x('B')).toBe(x('b1'));
    // Top to bottom in notebook order.
    const y = (id: string) => boxes.get(id)!.y;
    expect(y('A')).toBeLessThan(y('a1'));
    expect(y('a2')).toBeLessThan(y('B'));
    expect(y('C')).toBe(y('A'));
    expectNoOverlap(boxes);
  });

  it('sizes cards to their content and never overlaps them', () => {
    const boxes = layout(defaults(), {
      A: 60,
      a1: 900,
      a2: 40,
      B: 60,
      b1: 700,
      c1: 35
    });
    expect(boxes.get('a1')!.height).toBe(900);
    expect(boxes.get('c1')!.height).toBe(35);
    expectNoOverlap(boxes);
    // A short card is followed closely: no fixed step.
    expect(boxes.get('c2')!.y - (boxes.get('c1')!.y + 35)).toBe(20);
  });

  it('pushes the cards below a growing cell down in its column', () => {
    const before = layout(defaults(), { a1: 100 });
    const after = layout(defaults(), { a1: 500 });
    for (const id of ['a2', 'B', 'b1']) {
      expect(after.get(id)!.y - before.get(id)!.y).toBe(400);
    }
    // Other columns do not move.
    for (const id of ['intro', 'C', 'c1', 'c2']) {
      expect(after.get(id)).toEqual(before.get(id));
    }
    expectNoOverlap(after);
  });

  it('never moves a card the user placed; the others flow around it', () => {
    const stored = defaults();
    const free = layout(stored);
    const a2 = free.get('a2')!;
    // The user drops c3 right where a2 would go, a little lower.
    stored.c3 = { ...stored.c3, x: a2.x, y: a2.y + 40, placed: true };
    const before = layout(stored, { a1: 100 });
    const after = layout(stored, { a1: 600 });
    for (const boxes of [before, after]) {
      expect(boxes.get('c3')).toMatchObject({
        x: a2.x,
        y: a2.y + 40,
        placed: true
      });
      expectNoOverlap(boxes);
    }
    // c3 left its group's frame: C's frame holds the cards of its column only.
    const frames = layoutCards({ order: ORDER, pcGraph: PC, stored }).frames;
    const frameC = frames.find(f => f.headingId === 'C')!.rect;
    expect(frameC.x).toBeGreaterThan(a2.x + 600);
    // A group placed by hand entirely is framed where its cards are.
    const byHand = defaults();
    for (const id of ['C', 'c1', 'c2', 'c3']) {
      byHand[id] = { ...byHand[id], placed: true };
    }
    const handFrame = layoutCards({
      order: ORDER,
      pcGraph: PC,
      stored: byHand
    }).frames.find(f => f.headingId === 'C')!.rect;
    expect(handFrame.x).toBe(-20);
    expect(handFrame.y).toBe(6 * 140 - 20);
    // A stored place without `placed` (older servers, older files) is chosen too.
    const legacy = defaults();
    legacy.c1 = { x: 5000, y: 7000 };
    expect(layout(legacy).get('c1')).toMatchObject({ x: 5000, y: 7000 });
  });

  it('hides a folded group and closes the gap', () => {
    const stored = defaults();
    stored.A = { ...stored.A, collapsed: true };
    const boxes = layout(stored);
    for (const id of ['a1', 'a2', 'B', 'b1']) {
      expect(boxes.get(id)!.hidden).toBe(true);
    }
    expect(boxes.get('A')!.hidden).toBe(false);
    expect(boxes.get('C')!.hidden).toBe(false);
    // The next column (C's) stays where it was.
    expect(boxes.get('C')!.x).toBe(layout().get('C')!.x);
  });

  it('snaps to a 20 px grid', () => {
    expect(snap(0)).toBe(0);
    expect(snap(9)).toBe(0);
    expect(snap(11)).toBe(20);
    expect(snap(-31)).toBe(-40);
    expect(snap(1234.5)).toBe(1240);
  });

  it('fits the content, never making code smaller than 11 px', () => {
    const codePx = 13;
    // Small content: fits, not zoomed in past 1.
    const small = fitView(
      { x: 0, y: 0, width: 400, height: 300 },
      1200,
      800,
      codePx
    );
    expect(small.scale).toBe(1);
    // Wide content: as far out as readable, the top-left shown.
    const bounds = contentBounds(
      layoutCards({ order: ORDER, pcGraph: PC, stored: defaults() })
    )!;
    const view = fitView(bounds, 1280, 720, codePx);
    expect(view.scale * codePx).toBeGreaterThanOrEqual(MIN_CODE_PX);
    expect(view.x).toBeCloseTo(24 - bounds.x * view.scale);
    expect(view.y).toBeCloseTo(24 - bounds.y * view.scale);
    // Content that fits at a readable zoom is zoomed to fit, centred.
    const mid = fitView(
      { x: 0, y: 0, width: 1300, height: 600 },
      1280,
      720,
      codePx
    );
    expect(mid.scale * codePx).toBeGreaterThanOrEqual(MIN_CODE_PX);
    expect(mid.scale).toBeLessThan(1);
    expect(1300 * mid.scale).toBeLessThanOrEqual(1280 - 48 + 1e-9);
  });

  it('moves the selection with the arrow keys', () => {
    const boxes = layout();
    expect(neighbour(boxes, 'a1', 'down')).toBe('a2');
    expect(neighbour(boxes, 'a2', 'up')).toBe('a1');
    expect(neighbour(boxes, 'A', 'right')).toBe('C');
    expect(neighbour(boxes, 'C', 'left')).toBe('A');
    expect(neighbour(boxes, 'intro', 'left')).toBe(null);
    expect(neighbour(boxes, 'missing', 'up')).toBe(null);
  });
});

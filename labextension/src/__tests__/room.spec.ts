import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { readRoomLayout, writePlacement } from '../canvas/room';

const FULL = { x: 0, y: 0, width: 600, height: 120, collapsed: false };

/**
 * Two peers of one room, every update delivered to the other.
 */
function peers(): [Y.Doc, Y.Doc] {
  const a = new Y.Doc();
  const b = new Y.Doc();
  a.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin !== 'remote') {
      Y.applyUpdate(b, update, 'remote');
    }
  });
  b.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin !== 'remote') {
      Y.applyUpdate(a, update, 'remote');
    }
  });
  return [a, b];
}

describe('canvas room document', () => {
  it('writes a new cell as a map with its whole placement', () => {
    const [a, b] = peers();
    writePlacement(a, 'c1', { x: 40, y: 80 }, FULL);
    const map = b.getMap('cells').get('c1');
    expect(map).toBeInstanceOf(Y.Map);
    expect(readRoomLayout(b).cells.c1).toEqual({ ...FULL, x: 40, y: 80 });
  });

  it('merges concurrent moves of different keys and cells', () => {
    const [a, b] = peers();
    writePlacement(a, 'c1', { x: 1, y: 1 }, FULL);
    writePlacement(a, 'c2', { x: 2, y: 2 }, FULL);
    writePlacement(a, 'c1', { x: 100 }, FULL);
    writePlacement(b, 'c1', { y: 200 }, FULL);
    writePlacement(b, 'c2', { collapsed: true }, FULL);
    for (const doc of [a, b]) {
      const layout = readRoomLayout(doc);
      expect(layout.cells.c1).toMatchObject({ x: 100, y: 200 });
      expect(layout.cells.c2).toMatchObject({ x: 2, y: 2, collapsed: true });
    }
  });

  it('reads graphs and plain values, ignoring what is not a placement', () => {
    const doc = new Y.Doc();
    doc.transact(() => {
      doc.getMap('cells').set('p', { x: 5, y: 6, width: 'wide' });
      const list = new Y.Array<string>();
      list.push(['b', 'c']);
      doc.getMap('pc_graph').set('a', list);
      doc.getMap('np_graph').set('a', ['d']);
    });
    const layout = readRoomLayout(doc);
    expect(layout.cells.p).toEqual({ x: 5, y: 6 });
    expect(layout.pc_graph).toEqual({ a: ['b', 'c'] });
    expect(layout.np_graph).toEqual({ a: ['d'] });
    writePlacement(doc, 'p', { x: 9 }, FULL);
    expect(readRoomLayout(doc).cells.p).toEqual({ ...FULL, x: 9, y: 6 });
  });
});

import { expect, Locator, Page, test } from '@playwright/test';
import {
  createNotebook,
  execute,
  ITestCell,
  openNotebook,
  uniqueName
} from './helpers';

/**
 * Three headings (one nested), eight code cells, two of them with tall outputs.
 */
const CELLS: ITestCell[] = [
  { id: 'data', type: 'markdown', source: '# Data\nLoading and cleaning.' },
  { id: 'load', source: 'values = list(range(1, 41))\nlen(values)' },
  {
    id: 'dump',
    source: 'for v in values:\n    print(f"value {v:3d} squared {v * v:5d}")'
  },
  { id: 'clean', type: 'markdown', source: '## Cleaning' },
  { id: 'evens', source: 'evens = [v for v in values if v % 2 == 0]' },
  { id: 'count', source: 'len(evens)' },
  { id: 'results', type: 'markdown', source: '# Results' },
  { id: 'total', source: 'total = sum(values)\ntotal' },
  {
    id: 'table',
    source:
      'from IPython.display import HTML\nHTML("<table>" + "".join(f"<tr><td>{v}</td><td>{v * v}</td></tr>" for v in values[:30]) + "</table>")'
  },
  { id: 'mean', source: 'total / len(values)' },
  { id: 'done', source: 'print("done")' }
];

function card(page: Page, cellId: string): Locator {
  return page.locator(
    `.jp-CanvasView .jp-CanvasCard[data-cell-id="${cellId}"]`
  );
}

async function openCanvasOf(page: Page, notebook: string): Promise<Locator> {
  await page.setViewportSize({ width: 1400, height: 900 });
  await openNotebook(page, notebook);
  await page.locator('[data-command="jupyter-canvas:open-canvas"]').click();
  const view = page.locator('.jp-CanvasPanel .jp-CanvasView');
  await expect(view).toBeVisible();
  // The canvas alone in the main area, as someone working on it would have it.
  await execute(page, 'application:toggle-left-area');
  await execute(page, 'application:set-mode', { mode: 'single-document' });
  await page.addStyleTag({
    content: '.Toastify { display: none !important; }'
  });
  await expect(view.locator('.jp-CanvasCard')).toHaveCount(CELLS.length);
  // Joined: the banner is gone.
  await expect(view.locator('.jp-CanvasView-banner')).toBeHidden();
  return view;
}

interface IBox {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Every card's box on screen.
 */
async function screenBoxes(page: Page): Promise<IBox[]> {
  return page.evaluate(() =>
    [
      ...document.querySelectorAll<HTMLElement>(
        '.jp-CanvasPanel .jp-CanvasCard'
      )
    ]
      .filter(node => !node.classList.contains('lm-mod-hidden'))
      .map(node => {
        const r = node.getBoundingClientRect();
        return {
          id: node.dataset.cellId ?? '',
          x: r.x,
          y: r.y,
          width: r.width,
          height: r.height
        };
      })
  );
}

function overlapping(boxes: IBox[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      if (
        a.x < b.x + b.width - 0.5 &&
        b.x < a.x + a.width - 0.5 &&
        a.y < b.y + b.height - 0.5 &&
        b.y < a.y + a.height - 0.5
      ) {
        found.push(`${a.id} × ${b.id}`);
      }
    }
  }
  return found;
}

/**
 * The size of code text on screen (its font size times the zoom).
 */
async function codePixels(view: Locator): Promise<number> {
  return view.evaluate(node => {
    const line = node.querySelector('.jp-CanvasCard .cm-content')!;
    const scale = Number((node as HTMLElement).dataset.scale);
    return parseFloat(getComputedStyle(line).fontSize) * scale;
  });
}

async function dragHeader(
  page: Page,
  target: Locator,
  to: { x: number; y: number }
): Promise<void> {
  const header = target.locator('.jp-CanvasCard-header');
  const box = (await header.boundingBox())!;
  const x = box.x + 60;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move((x + to.x) / 2, (y + to.y) / 2, { steps: 5 });
  await page.mouse.move(to.x, to.y, { steps: 5 });
  await page.mouse.up();
}

test('the canvas is a plane: columns by heading, no overlaps, readable, dragged card on top', async ({
  page
}) => {
  const notebook = `${uniqueName('plane')}.ipynb`;
  await createNotebook(page.request, notebook, CELLS);
  const view = await openCanvasOf(page, notebook);

  // Each top-level heading group is a column; the nested group is inside, framed.
  const x = async (id: string) =>
    Number(await card(page, id).getAttribute('data-x'));
  const y = async (id: string) =>
    Number(await card(page, id).getAttribute('data-y'));
  expect(await x('load')).toBe(await x('data'));
  expect(await x('results')).toBeGreaterThan((await x('data')) + 600);
  expect(await y('results')).toBe(await y('data'));
  expect(await x('evens')).toBeGreaterThan(await x('load'));
  await expect(view.locator('.jp-CanvasView-frame')).toHaveCount(3);

  // The default view: code at least 11 px high on screen.
  expect(await codePixels(view)).toBeGreaterThanOrEqual(11);

  // Outputs grow the cards (two tall ones): the cards below move down, none overlaps.
  const countBefore = await y('count');
  await page
    .locator(
      '.jp-CanvasPanel [data-jp-item-name="run-all"] .jp-ToolbarButtonComponent'
    )
    .click();
  await expect(card(page, 'done').locator('.jp-OutputArea')).toContainText(
    'done'
  );
  await expect(card(page, 'table').locator('table')).toBeVisible();
  await expect(card(page, 'dump').locator('.jp-OutputArea')).toContainText(
    'value  40'
  );
  await expect.poll(() => y('count')).toBeGreaterThan(countBefore + 200);
  await expect
    .poll(async () => overlapping(await screenBoxes(page)))
    .toEqual([]);
  // The card heights follow their contents: a one-line card is short, the dump tall.
  const heights = Object.fromEntries(
    (await screenBoxes(page)).map(b => [b.id, b.height])
  );
  expect(heights.dump).toBeGreaterThan(3 * heights.evens);

  // Fit: everything it can show, still readable.
  const fit = page.locator(
    '.jp-CanvasPanel [data-jp-item-name="fit"] .jp-ToolbarButtonComponent'
  );
  await fit.click();
  expect(await codePixels(view)).toBeGreaterThanOrEqual(11);

  // Drag `total` (placed from now on), then drag `load`, drawn earlier in the page,
  // onto it: the dragged card is on top at the drop point, on the 20 px grid.
  const viewBox = (await view.boundingBox())!;
  await dragHeader(page, card(page, 'total'), {
    x: viewBox.x + 700,
    y: viewBox.y + 300
  });
  await expect(card(page, 'total')).toHaveAttribute('data-placed', 'true');
  const target = (await card(page, 'total').boundingBox())!;
  const drop = { x: target.x + 120, y: target.y + 20 };
  await dragHeader(page, card(page, 'load'), drop);
  const onTop = await page.evaluate(
    ({ x, y }) =>
      (
        document
          .elementFromPoint(x, y)
          ?.closest('.jp-CanvasCard') as HTMLElement | null
      )?.dataset.cellId,
    drop
  );
  expect(onTop).toBe('load');
  expect((await x('load')) % 20).toBe(0);
  expect((await y('load')) % 20).toBe(0);
  // The placed cards stay where they were dropped; the others still never overlap them.
  const free = (await screenBoxes(page)).filter(
    b => b.id !== 'load' && b.id !== 'total'
  );
  expect(overlapping(free)).toEqual([]);
  expect(
    overlapping((await screenBoxes(page)).filter(b => b.id !== 'load'))
  ).toEqual([]);

  // A double-click on its header puts a placed card back in its column.
  await card(page, 'load').locator('.jp-CanvasCard-header').dblclick();
  await expect(card(page, 'load')).toHaveAttribute('data-placed', 'false');
  await expect.poll(() => x('load')).toBe(await x('data'));
  await expect
    .poll(async () => overlapping(await screenBoxes(page)))
    .toEqual([]);

  // Keys: arrows move the selection, Shift-Enter runs the selected card.
  await card(page, 'mean').locator('.jp-CanvasCard-label').click();
  await expect(card(page, 'mean')).toHaveClass(/jp-mod-selected/);
  await page.keyboard.press('ArrowDown');
  await expect(card(page, 'done')).toHaveClass(/jp-mod-selected/);
  await page.keyboard.press('ArrowUp');
  await expect(card(page, 'mean')).toHaveClass(/jp-mod-selected/);
  const countLabel = card(page, 'mean').locator('.jp-CanvasCard-label');
  const labelBefore = await countLabel.textContent();
  await page.keyboard.press('Shift+Enter');
  await expect(countLabel).not.toHaveText(labelBefore ?? '');

  // Ctrl+wheel zooms at the cursor: the point under it stays put.
  const probe = (await card(page, 'mean').boundingBox())!;
  const at = { x: probe.x + 30, y: probe.y + 10 };
  const scaleBefore = Number(await view.getAttribute('data-scale'));
  await page.mouse.move(at.x, at.y);
  await page.keyboard.down('Control');
  await page.mouse.wheel(0, -300);
  await page.keyboard.up('Control');
  await expect
    .poll(async () => Number(await view.getAttribute('data-scale')))
    .toBeGreaterThan(scaleBefore);
  const after = (await card(page, 'mean').boundingBox())!;
  const scaleAfter = Number(await view.getAttribute('data-scale'));
  const ratio = scaleAfter / scaleBefore;
  expect(Math.abs(after.x - (at.x - 30 * ratio))).toBeLessThan(2);
  expect(Math.abs(after.y - (at.y - 10 * ratio))).toBeLessThan(2);

  // Folding a heading hides its group; the next column does not move.
  await fit.click();
  const resultsX = await x('results');
  await card(page, 'data').locator('.jp-CanvasCard-collapse').click();
  await expect(card(page, 'dump')).toBeHidden();
  await expect(card(page, 'data')).toContainText('5 cells folded');
  expect(await x('results')).toBe(resultsX);
});

import * as fs from 'fs';
import * as path from 'path';
import { expect, test } from '@playwright/test';
import { createNotebook, execute, openNotebook, uniqueName } from './helpers';

const SHOTS = process.env.JUPYTER_CANVAS_SCREENSHOT_DIR;

/**
 * The screenshot of the README (docs/screenshots/canvas.png). It only runs when
 * asked: `JUPYTER_CANVAS_SCREENSHOT_DIR=../../docs/screenshots jlpm playwright
 * test screenshot`.
 */
test('the canvas view, for the README', async ({ page, request }) => {
  test.skip(
    !SHOTS,
    'set JUPYTER_CANVAS_SCREENSHOT_DIR to write the screenshot'
  );
  const notebook = `${uniqueName('analysis')}.ipynb`;
  // Two heading groups (one nested group inside the first): two columns, laid
  // out by the canvas itself (no stored places).
  await createNotebook(request, notebook, [
    {
      id: 'report',
      type: 'markdown',
      source: '# Sales by region\nEvery cell under this heading is one group.'
    },
    {
      id: 'load',
      source:
        'sales = {"north": 120, "south": 95, "east": 143, "west": 88}\nprint(f"{len(sales)} regions, {sum(sales.values())} units")'
    },
    {
      id: 'best',
      source: 'best = max(sales, key=sales.get)\nbest, sales[best]'
    },
    { id: 'details', type: 'markdown', source: '## Details' },
    {
      id: 'table',
      source:
        'from IPython.display import HTML\nrows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in sales.items())\nHTML(f"<table><tr><th>region</th><th>units</th></tr>{rows}</table>")'
    },
    {
      id: 'summary',
      type: 'markdown',
      source: '# Summary\nShares of the total, largest first.'
    },
    {
      id: 'share',
      source:
        'total = sum(sales.values())\nfor region, units in sorted(sales.items(), key=lambda kv: -kv[1]):\n    print(f"{region:>6} {units / total:6.1%}")'
    },
    {
      id: 'bar',
      source:
        'for region, units in sales.items():\n    print(f"{region:>6} " + "#" * (units // 8))'
    }
  ]);

  await page.setViewportSize({ width: 1280, height: 820 });
  await openNotebook(page, notebook);
  await page.locator('[data-command="jupyter-canvas:open-canvas"]').click();
  const view = page.locator('.jp-CanvasPanel .jp-CanvasView');
  await expect(view.locator('.jp-CanvasCard')).toHaveCount(8);
  await execute(page, 'application:toggle-left-area');
  await execute(page, 'application:set-mode', { mode: 'single-document' });

  await page
    .locator(
      '.jp-CanvasPanel [data-jp-item-name="run-all"] .jp-ToolbarButtonComponent'
    )
    .click();
  await expect(
    view.locator('.jp-CanvasCard[data-cell-id="share"] .jp-OutputArea')
  ).toContainText('north');
  await expect(
    view.locator('.jp-CanvasCard[data-cell-id="table"] .jp-OutputArea table')
  ).toBeVisible();
  await expect(
    view.locator('.jp-CanvasCard[data-cell-id="bar"] .jp-OutputArea')
  ).toContainText('west');
  await page.addStyleTag({
    content: '.Toastify { display: none !important; }'
  });
  await page
    .locator(
      '.jp-CanvasPanel [data-jp-item-name="fit"] .jp-ToolbarButtonComponent'
    )
    .click();
  await page.waitForTimeout(800);
  fs.mkdirSync(SHOTS!, { recursive: true });
  await page
    .locator('.jp-CanvasPanel')
    .screenshot({ path: path.join(SHOTS!, 'canvas.png') });
});

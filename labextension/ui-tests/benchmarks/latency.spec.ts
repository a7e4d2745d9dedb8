import { expect, Page, test } from '@playwright/test';
import {
  cell,
  createNotebook,
  openNotebook,
  uniqueName
} from '../tests/helpers';

/**
 * Shift-Enter to output, with jupyter_canvas (cells queued on the server,
 * outputs through the shared document) against stock JupyterLab (cells sent
 * through the page's kernel websocket), both served in this run on this
 * machine, both with the TCP_NODELAY kernel websocket.
 */
const STOCK_URL = `http://127.0.0.1:${process.env.JUPYTER_CANVAS_UI_STOCK_PORT ?? 8889}/`;

/** Measured runs on each server (one more, first, warms the kernel up). */
const RUNS = 24;

/**
 * How much slower than stock our median may be, in ms. On this 2-core
 * machine, shared with other work, two medians of the same stock JupyterLab
 * measured one after the other differ by a few milliseconds (scheduling, GC,
 * the other server's background work); 5 ms absorbs that without hiding a
 * real regression (the 13 ms difference the issue reported would fail).
 */
const TOLERANCE_MS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Press Shift-Enter in the n-th cell; the milliseconds (page clock) from the
 * key event to the cell's output in the page's DOM.
 */
async function timeRun(page: Page, index: number): Promise<number> {
  // Focus (and so the notebook's key bindings) belongs to the front page.
  await page.bringToFront();
  // The n-th cell of the notebook's model (cells outside the view may not be
  // in the DOM), made active in command mode: Shift-Enter runs it.
  await page.evaluate(index => {
    const w = window as any;
    const notebook = w.jupyterapp.shell.currentWidget.content;
    notebook.activeCellIndex = index;
    notebook.mode = 'command';
    notebook.activeCell.node.scrollIntoView({ block: 'center' });
    notebook.activeCell.node.focus();
    const node: HTMLElement = notebook.widgets[index].node;
    w.__latency = new Promise<number>((resolve, reject) => {
      let start = 0;
      const onKey = (event: KeyboardEvent) => {
        if (event.key === 'Enter' && event.shiftKey && start === 0) {
          start = performance.now();
        }
      };
      const observer = new MutationObserver(() => {
        const text = node.querySelector('.jp-OutputArea')?.textContent ?? '';
        if (start !== 0 && /run \d+/.test(text)) {
          const elapsed = performance.now() - start;
          observer.disconnect();
          document.removeEventListener('keydown', onKey, true);
          resolve(elapsed);
        }
      });
      document.addEventListener('keydown', onKey, true);
      observer.observe(node, {
        subtree: true,
        childList: true,
        characterData: true
      });
      setTimeout(
        () =>
          reject(
            new Error(
              `no output in cell ${index} (key seen: ${start !== 0}, focus: ${document.activeElement?.className}, active: ${notebook.activeCellIndex}, outputs: ${node.querySelector('.jp-OutputArea')?.textContent})`
            )
          ),
        30_000
      );
    });
  }, index);
  await page.keyboard.press('Shift+Enter');
  const elapsed = await page.evaluate(() => (window as any).__latency);
  // The run is over (execution count shown) before the next one starts.
  await page
    .waitForFunction(
      index => {
        const notebook = (window as any).jupyterapp.shell.currentWidget.content;
        const widget = notebook.widgets[index];
        const prompt = widget.node.querySelector('.jp-InputPrompt');
        return (
          widget.model.executionCount !== null &&
          !/\*/.test(prompt?.textContent ?? '') &&
          !widget.node.querySelector('.jp-CanvasQueueBadge')
        );
      },
      index,
      { timeout: 30_000 }
    )
    .catch(async error => {
      throw new Error(`${error}: ${await debugCell(page, index)}`);
    });
  await page.waitForTimeout(100);
  return elapsed as number;
}

async function debugCell(page: Page, index: number): Promise<string> {
  return page.evaluate(index => {
    const notebook = (window as any).jupyterapp.shell.currentWidget.content;
    const widget = notebook.widgets[index];
    return JSON.stringify({
      url: location.href,
      active: notebook.activeCellIndex,
      text: widget.node.querySelector('.jp-OutputArea')?.textContent,
      count: widget.model.executionCount,
      state: widget.model.executionState,
      prompt: widget.node.querySelector('.jp-InputPrompt')?.textContent,
      badge: widget.node.querySelector('.jp-CanvasQueueBadge')?.textContent
    });
  }, index);
}

test('Shift-Enter to output is no slower than stock JupyterLab', async ({
  browser,
  request,
  playwright
}) => {
  test.setTimeout(300_000);
  const cells = [
    { id: 'setup', source: 'import itertools\ncounter = itertools.count()' },
    ...Array.from({ length: RUNS + 1 }, (_, i) => ({
      id: `run${i}`,
      source: 'print("run", next(counter))'
    }))
  ];
  // Both servers serve the same directory: one notebook each (a file one
  // server writes would be reloaded into the other's open document).
  const path = `${uniqueName('latency')}.ipynb`;
  const stockPath = `stock-${path}`;
  const stockRequest = await playwright.request.newContext({
    baseURL: STOCK_URL
  });
  await createNotebook(request, path, cells);
  await createNotebook(stockRequest, stockPath, cells);
  // The stock server has no jupyter_canvas.
  expect((await stockRequest.get('api/queue')).status()).toBe(404);

  const ours = await browser.newPage();
  const stock = await browser.newPage({ baseURL: STOCK_URL });
  await openNotebook(ours, path);
  await openNotebook(stock, stockPath);
  const plugins = (page: Page) =>
    page.evaluate(() => {
      const app = (window as any).jupyterapp;
      // The plugins that may provide the notebook cell executor.
      return Object.fromEntries(
        [
          'jupyter-canvas:cell-executor',
          '@jupyterlab/notebook-extension:cell-executor',
          '@jupyter/docprovider-extension:notebook-cell-executor'
        ].map(id => [id, app.hasPlugin(id)])
      );
    });
  // Stock runs cells with JupyterLab's executor (jupyter-collaboration's, as
  // it is installed here); ours with the extension's.
  const stockPlugins = await plugins(stock);
  expect(stockPlugins['jupyter-canvas:cell-executor']).toBe(false);
  expect(
    stockPlugins['@jupyterlab/notebook-extension:cell-executor'] ||
      stockPlugins['@jupyter/docprovider-extension:notebook-cell-executor']
  ).toBe(true);
  expect((await plugins(ours))['jupyter-canvas:cell-executor']).toBe(true);

  // Define the counter, and a first run on each (kernel warm-up, not measured).
  for (const page of [ours, stock]) {
    await runSetup(page);
    await timeRun(page, 1);
  }
  // Alternate, so drift on the machine touches both alike.
  const times = { ours: [] as number[], stock: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    times.stock.push(await timeRun(stock, i + 2));
    times.ours.push(await timeRun(ours, i + 2));
  }
  const result = {
    runs: RUNS,
    ours_median_ms: +median(times.ours).toFixed(1),
    stock_median_ms: +median(times.stock).toFixed(1),
    ours_ms: times.ours.map(t => +t.toFixed(1)),
    stock_ms: times.stock.map(t => +t.toFixed(1)),
    tolerance_ms: TOLERANCE_MS
  };
  console.log(`Shift-Enter to output: ${JSON.stringify(result)}`);
  expect(result.ours_median_ms).toBeLessThanOrEqual(
    result.stock_median_ms + TOLERANCE_MS
  );
  await stockRequest.dispose();
});

async function runSetup(page: Page): Promise<void> {
  await page.bringToFront();
  await cell(page, 0).locator('.cm-content').click();
  await page.keyboard.press('Shift+Enter');
  await expect(cell(page, 0).locator('.jp-InputPrompt')).toHaveText(/\[\d+\]/);
}

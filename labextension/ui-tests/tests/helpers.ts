import { APIRequestContext, expect, Locator, Page } from '@playwright/test';

/**
 * A cell of a test notebook.
 */
export interface ITestCell {
  id: string;
  source: string;
  type?: 'code' | 'markdown';
}

/**
 * Write a notebook through the contents API (cells with the given ids).
 */
export async function createNotebook(
  request: APIRequestContext,
  path: string,
  cells: ITestCell[]
): Promise<void> {
  const content = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: {
        name: 'python3',
        display_name: 'Python 3 (ipykernel)',
        language: 'python'
      },
      language_info: { name: 'python' }
    },
    cells: cells.map(cell =>
      (cell.type ?? 'code') === 'code'
        ? {
            id: cell.id,
            cell_type: 'code',
            source: cell.source,
            metadata: {},
            outputs: [],
            execution_count: null
          }
        : {
            id: cell.id,
            cell_type: 'markdown',
            source: cell.source,
            metadata: {}
          }
    )
  };
  const response = await request.put(`api/contents/${path}`, {
    data: { type: 'notebook', format: 'json', content }
  });
  expect(response.ok(), await response.text()).toBeTruthy();
}

/**
 * A name no other test uses (for notebooks and workspaces).
 */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Open a notebook in JupyterLab, in a fresh workspace; unless told not to,
 * wait until its kernel is connected.
 */
export async function openNotebook(
  page: Page,
  path: string,
  options: { waitForKernel?: boolean } = {}
): Promise<Locator> {
  watchForErrors(page);
  await page.goto(`lab/workspaces/${uniqueName('ws')}/tree/${path}`);
  const panel = page.locator('.jp-NotebookPanel').filter({
    has: page.locator('.jp-Notebook')
  });
  await expect(panel).toHaveCount(1, { timeout: 60_000 });
  await page.waitForFunction(() => (window as any).jupyterapp?.started);
  if (options.waitForKernel ?? true) {
    await page.waitForFunction(
      notebook => {
        const app = (window as any).jupyterapp;
        const widget = app.shell.currentWidget;
        const kernel = widget?.sessionContext?.session?.kernel;
        // Connected is enough: a kernel busy with a cell answers nothing
        // (not even its status) before the cell ends.
        return (
          widget?.context?.path === notebook &&
          kernel?.connectionStatus === 'connected'
        );
      },
      path,
      { timeout: 60_000 }
    );
  }
  return panel;
}

/**
 * The n-th cell of the open notebook.
 */
export function cell(page: Page, index: number): Locator {
  return page.locator('.jp-NotebookPanel .jp-Notebook .jp-Cell').nth(index);
}

/**
 * Put the cursor in a cell's editor and press Shift+Enter.
 */
export async function runWithShiftEnter(
  page: Page,
  index: number
): Promise<void> {
  await cell(page, index).locator('.cm-content').click();
  await page.keyboard.press('Shift+Enter');
}

/**
 * The queue badge of the n-th cell.
 */
export function badge(page: Page, index: number): Locator {
  return cell(page, index).locator(':scope > .jp-CanvasQueueBadge');
}

/**
 * The text of a cell's outputs.
 */
export function outputs(page: Page, index: number): Locator {
  return cell(page, index).locator('.jp-OutputArea');
}

/**
 * The server's entries of a notebook.
 */
export async function queueEntries(
  request: APIRequestContext,
  path: string
): Promise<any[]> {
  const response = await request.get(
    `api/queue?path=${encodeURIComponent(path)}`
  );
  expect(response.ok()).toBeTruthy();
  return (await response.json()).entries;
}

/**
 * The id of the kernel of a notebook's session.
 */
export async function kernelOf(
  request: APIRequestContext,
  path: string
): Promise<string> {
  const sessions = await (await request.get('api/sessions')).json();
  const session = sessions.find((s: any) => s.path === path);
  expect(session, `a session for ${path}`).toBeTruthy();
  return session.kernel.id;
}

/**
 * Run a JupyterLab command in the page.
 */
export async function execute(
  page: Page,
  command: string,
  args: Record<string, unknown> = {}
): Promise<void> {
  await page.evaluate(
    ({ command, args }) =>
      (window as any).jupyterapp.commands.execute(command, args),
    { command, args }
  );
}

const watched = new WeakSet<Page>();

/**
 * Print the page's errors and failed API calls into the test output (so a CI
 * failure says what the page saw).
 */
export function watchForErrors(page: Page): void {
  if (watched.has(page)) {
    return;
  }
  watched.add(page);
  page.on('console', message => {
    if (
      message.type() === 'error' ||
      message.text().includes('jupyter-canvas')
    ) {
      console.log(`[page ${message.type()}] ${message.text()}`);
    }
  });
  page.on('response', response => {
    if (response.url().includes('/api/') && response.status() >= 400) {
      console.log(
        `[page http] ${response.request().method()} ${response.url()} -> ${response.status()}`
      );
    }
  });
}

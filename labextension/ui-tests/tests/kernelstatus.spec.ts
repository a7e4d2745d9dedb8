import { expect, test } from '@playwright/test';
import {
  badge,
  createNotebook,
  kernelOf,
  openNotebook,
  outputs,
  queueEntries,
  runWithShiftEnter,
  uniqueName
} from './helpers';

test('a kernel that dies for good: the status item says dead and why, the killed cell says so', async ({
  page,
  request
}) => {
  const path = `${uniqueName('dead-kernel')}.ipynb`;
  await createNotebook(request, path, [
    { id: 'alive', source: 'print("alive")' },
    {
      id: 'kill',
      source: 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)'
    }
  ]);
  await openNotebook(page, path);
  const item = page.locator('#jp-main-statusbar .jp-CanvasKernelStatus');

  await runWithShiftEnter(page, 0);
  await expect(outputs(page, 0)).toContainText('alive');
  await expect(item).toContainText('python3: running');

  await runWithShiftEnter(page, 1);

  // The server's word on the kernel, then the same in the status bar.
  const kernelId = await kernelOf(request, path);
  let reason = '';
  await expect
    .poll(
      async () => {
        const status = await (
          await request.get(`api/kernels/${kernelId}/status`)
        ).json();
        reason = status.reason ?? '';
        return status.status;
      },
      { timeout: 30_000 }
    )
    .toBe('dead');
  expect(reason).not.toBe('');
  await expect(item).toContainText('dead');
  await expect(item).toContainText(reason);
  await expect(item).toHaveAttribute('data-tone', 'dead');

  // The killed cell: the server's error with the reason, and its badge.
  await expect(outputs(page, 1)).toContainText('DeadKernelError');
  const killed = (await queueEntries(request, path)).find(
    e => e.cell_id === 'kill'
  );
  expect(killed.state).toBe('error');
  expect(killed.reason).toBeTruthy();
  await expect(badge(page, 1)).toContainText(`Stopped: ${killed.reason}`);
  await expect(badge(page, 1)).toHaveAttribute('data-state', 'killed');

  // The server forgets the dead kernel and its session; the page's session
  // loses its kernel. The item still says which kernel died and why, until a
  // new kernel is chosen.
  await expect
    .poll(
      async () => {
        const sessions = await (await request.get('api/sessions')).json();
        return sessions.some((s: any) => s.kernel?.id === kernelId);
      },
      { timeout: 30_000 }
    )
    .toBe(false);
  await page.waitForFunction(
    () =>
      !(window as any).jupyterapp.shell.currentWidget?.sessionContext?.session
        ?.kernel,
    undefined,
    { timeout: 30_000 }
  );
  await expect(item).toContainText('dead');
  await expect(item).toContainText(reason);
});

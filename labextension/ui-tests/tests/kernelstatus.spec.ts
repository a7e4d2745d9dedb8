import { expect, test } from '@playwright/test';
import {
  createNotebook,
  kernelOf,
  openNotebook,
  outputs,
  runWithShiftEnter,
  uniqueName
} from './helpers';

test('the kernel status item shows a dead kernel and why it died', async ({
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
});

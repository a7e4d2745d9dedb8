import { defineConfig } from '@playwright/test';

/**
 * Browser tests of jupyter_canvas: JupyterLab served by a real Jupyter server
 * (with the jupyter_canvas server extension and real ipykernel kernels), driven
 * in Debian's Chromium. No browser is downloaded.
 */
const port = Number(process.env.JUPYTER_CANVAS_UI_PORT ?? 8888);
const python = process.env.JUPYTER_CANVAS_PYTHON ?? 'python3';
// The server's log goes to a file (printed by tests/test_ui.py when a test fails).
const serverLog =
  process.env.JUPYTER_CANVAS_UI_SERVER_LOG ?? 'test-results-server.log';

export default defineConfig({
  testDir: './tests',
  timeout: 150_000,
  expect: { timeout: 30_000 },
  // Two cores: one test (one server, a few kernels) at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}/`,
    viewport: { width: 1400, height: 900 },
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: `"${python}" -m jupyter lab --config jupyter_server_test_config.py > "${serverLog}" 2>&1`,
    url: `http://127.0.0.1:${port}/api`,
    timeout: 120_000,
    reuseExistingServer: false
  }
});

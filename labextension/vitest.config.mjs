import { defineConfig } from 'vitest/config';

// Unit tests of the frontend logic (pure modules: no JupyterLab application).
// The browser tests live in ui-tests/ and run with Playwright.
export default defineConfig({
  test: {
    include: ['src/**/__tests__/**/*.spec.ts'],
    environment: 'node'
  }
});

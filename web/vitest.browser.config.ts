import { defineConfig } from "vitest/config";

// Browser tests: Debian's chromium driven by playwright-core against a real dcp server
// (started by the Rust test `tests/browser.rs`, which passes its address in the environment).
export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/**/*.e2e.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});

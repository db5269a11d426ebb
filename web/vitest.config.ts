import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// Unit tests: components, the stores, the WebSocket hook and the forms, in jsdom.
export default defineConfig({
  plugins: [react()],
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});

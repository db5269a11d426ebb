import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the UI with hot reload and forwards the API to a dcp server on
// DCP_DEV_API (default http://127.0.0.1:8080); the release build is embedded in the binary.
const api = process.env.DCP_DEV_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: false },
      "/health": { target: api },
      "/ws": { target: api, ws: true },
    },
  },
});

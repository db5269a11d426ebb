import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the UI with hot reload and forwards the API to a dcp server on
// DCP_DEV_API (default http://127.0.0.1:8080); the release build is embedded in the binary.
const api = process.env.DCP_DEV_API ?? "http://127.0.0.1:8080";

const DIST = "dist";
const NEXT = ".dist-next";

function files(dir: string): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      found.set(relative(dir, path), readFileSync(path));
    }
  }
  return found;
}

/**
 * Builds into `.dist-next` and replaces `dist` only when something changed: the server
 * embeds `dist` (build.rs), and fresh timestamps alone would make cargo rebuild it.
 */
function replaceDistWhenChanged(): Plugin {
  return {
    name: "dcp-replace-dist-when-changed",
    apply: "build",
    closeBundle() {
      const next = files(NEXT);
      const current = files(DIST);
      const same = next.size === current.size && [...next].every(([path, body]) => current.get(path)?.equals(body));
      if (same) {
        rmSync(NEXT, { recursive: true, force: true });
        return;
      }
      rmSync(DIST, { recursive: true, force: true });
      renameSync(NEXT, DIST);
    },
  };
}

export default defineConfig({
  plugins: [react(), replaceDistWhenChanged()],
  build: {
    outDir: NEXT,
    emptyOutDir: true,
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

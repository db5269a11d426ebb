// The UI's performance in Debian's chromium against a real dcp server: the containers list
// with a thousand rows and the log viewer with a hundred thousand lines, each beside a
// baseline measured in the same run. Started by `benches/ui.rs` (`cargo bench --bench ui`),
// which makes the server and the containers and passes them in the environment; this script
// prints one JSON object (the figures) on stdout, its progress on stderr, and the bench
// prints the table. Plain JavaScript (ESM): node runs it as it is, with nothing to install.
//
//   node e2e/perf.js before   the containers page only (before the bench's containers exist)
//   node e2e/perf.js main     the containers page and the log viewer
//
// Every timing is taken inside the page (performance.now(), requestAnimationFrame and a
// MutationObserver), so playwright's round trips are not part of any figure.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through \`cargo bench --bench ui\``);
  return value;
}

const mode = process.argv[2] ?? "main";
const base = setting("DCP_UI_URL");
const password = setting("DCP_UI_ADMIN_PASSWORD");
const chromiumPath = process.env.DCP_TEST_CHROMIUM ?? "/usr/bin/chromium";
const rounds = Number(process.env.DCP_PERF_ROUNDS ?? 5);
/** Full loads of each log (and reads of its bare stream): the median is reported. */
const loads = Number(process.env.DCP_PERF_LOADS ?? 3);

const log = (...args) => console.error("[perf]", ...args);

/**
 * Helpers installed in the page before its scripts run (playwright serializes this function:
 * it may use nothing from this module).
 */
function installHelpers() {
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  /** After the next frame has been produced: a rAF, then a task (runs after that frame's paint). */
  const painted = () =>
    new Promise((resolve) =>
      requestAnimationFrame(() => {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => resolve(performance.now());
        channel.port2.postMessage(null);
      }),
    );
  /** Resolves (with performance.now()) as soon as `test()` holds after a DOM change. */
  const until = (test, timeoutMs = 120_000) =>
    new Promise((resolve, reject) => {
      if (test()) return resolve(performance.now());
      const observer = new MutationObserver(() => {
        if (test()) {
          observer.disconnect();
          clearTimeout(timer);
          resolve(performance.now());
        }
      });
      const timer = setTimeout(() => {
        observer.disconnect();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for the page`));
      }, timeoutMs);
      observer.observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true });
    });
  const go = (url) => {
    window.history.pushState(null, "", url);
    window.dispatchEvent(new PopStateEvent("popstate"));
  };
  /** Sets an input's or select's value as a user would (React sees the change). */
  const setValue = (element, value, eventName) => {
    const prototype = element instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(prototype, "value").set.call(element, value);
    element.dispatchEvent(new Event(eventName, { bubbles: true }));
  };
  const stats = (frames) => {
    const sorted = [...frames].sort((a, b) => a - b);
    const at = (p) => (sorted.length ? sorted[Math.round((sorted.length - 1) * p)] : 0);
    return {
      frames: frames.length,
      p50: at(0.5),
      p95: at(0.95),
      max: at(1),
      over50: frames.filter((f) => f > 50).length,
      total: frames.reduce((a, b) => a + b, 0),
    };
  };
  /**
   * Frame durations (time between successive animation frames) while `move(progress, now)`
   * runs in each frame for `durationMs`; also the most `rowSelector` elements seen at once.
   */
  const frames = async (scroller, rowSelector, durationMs, move) => {
    await nextFrame();
    await nextFrame();
    const durations = [];
    const longTasks = [];
    const observer = new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration)));
    observer.observe({ type: "longtask" });
    let maxRows = 0;
    let start = null;
    let last = null;
    await new Promise((resolve) => {
      const step = () => {
        // The time the callback runs, not the frame's timestamp: a busy main thread shows
        // as the long frame it causes (the timestamps are aligned to the display's ticks).
        const now = performance.now();
        if (start === null) start = now;
        else durations.push(now - last);
        last = now;
        maxRows = Math.max(maxRows, scroller.querySelectorAll(rowSelector).length);
        const progress = Math.min(1, (now - start) / durationMs);
        move(progress);
        if (progress < 1) requestAnimationFrame(step);
        else resolve();
      };
      requestAnimationFrame(step);
    });
    await nextFrame();
    maxRows = Math.max(maxRows, scroller.querySelectorAll(rowSelector).length);
    observer.takeRecords().forEach((e) => longTasks.push(e.duration));
    observer.disconnect();
    return { ...stats(durations), maxRows, longTasks: longTasks.length, longestTask: Math.max(0, ...longTasks) };
  };

  window.__perf = {
    painted,
    until,
    go,
    setValue,

    /** Pushes `url` (in-app navigation, as a link does) and times it until `ready()` holds, then until painted. */
    async navigate(url, readySelector) {
      const started = performance.now();
      go(url);
      const ready = await until(() => {
        const element = document.querySelector(readySelector);
        return element !== null && element.getBoundingClientRect().height > 0;
      });
      const shown = await painted();
      return { dom: ready - started, painted: shown - started };
    },

    /** Pushes `url` and times it until the element of `selector` reads `text`, then until painted. */
    async navigateUntilText(url, selector, text) {
      const started = performance.now();
      go(url);
      const ready = await until(() => document.querySelector(selector)?.textContent === text);
      const shown = await painted();
      return { dom: ready - started, painted: shown - started };
    },

    /** Frames with nothing to do (the machine's cadence): the baseline of the scroll figures. */
    async idle(scrollSelector, rowSelector, durationMs) {
      const scroller = document.querySelector(scrollSelector);
      return frames(scroller, rowSelector, durationMs, () => {});
    },

    /** Scrolls from the top to the bottom in `durationMs`, a step each frame (a scrollbar drag). */
    async drag(scrollSelector, rowSelector, durationMs) {
      const scroller = document.querySelector(scrollSelector);
      scroller.scrollTop = 0;
      const range = scroller.scrollHeight - scroller.clientHeight;
      const result = await frames(scroller, rowSelector, durationMs, (progress) => {
        scroller.scrollTop = progress * range;
      });
      return { ...result, range, reachedBottom: scroller.scrollTop >= range - 2 };
    },

    /** Scrolls `pxPerFrame` each frame from the middle for `durationMs` (a fast wheel), the same speed whatever the length. */
    async wheel(scrollSelector, rowSelector, durationMs, pxPerFrame) {
      const scroller = document.querySelector(scrollSelector);
      const range = scroller.scrollHeight - scroller.clientHeight;
      scroller.scrollTop = Math.max(0, range / 2 - (pxPerFrame * 60 * durationMs) / 2000);
      return frames(scroller, rowSelector, durationMs, () => {
        scroller.scrollTop += pxPerFrame;
      });
    },

    /** Changes a control and times it until `count` (an element's text) reads `expected` — after having read something else, when `mustChange`. */
    async changeUntil(controlSelector, value, eventName, countSelector, expected, mustChange) {
      const control = document.querySelector(controlSelector);
      let changed = !mustChange;
      const started = performance.now();
      setValue(control, value, eventName);
      const ready = await until(() => {
        // Queried each time: a new connection renders a new element.
        const text = document.querySelector(countSelector)?.textContent ?? "";
        if (text !== expected) changed = true;
        return changed && text === expected;
      });
      const shown = await painted();
      return { dom: ready - started, painted: shown - started };
    },

    /** The log stream alone: a bare WebSocket that parses each message and counts lines, until the server closes it. */
    async rawStream(url, ticket) {
      const started = performance.now();
      let messages = 0;
      let lines = 0;
      await new Promise((resolve, reject) => {
        const socket = new WebSocket(url, [`dcp.ticket.${ticket}`]);
        socket.onmessage = (event) => {
          messages++;
          const message = JSON.parse(event.data);
          if (message.type === "log") lines += message.data.split("\n").length - 1;
        };
        socket.onerror = () => reject(new Error("the log socket failed"));
        socket.onclose = () => resolve();
      });
      return { ms: performance.now() - started, messages, lines };
    },

    heapMb() {
      return performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null;
    },
  };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : 0;
};

/** The sample with the median `key` (the lower one of an even count). */
const medianBy = (samples, key) => [...samples].sort((a, b) => key(a) - key(b))[Math.floor((samples.length - 1) / 2)];

const lines = (n) => `${n.toLocaleString("en")} lines`;

let apiToken = null;

/** A single-use WebSocket ticket for a container's logs (from this script's own session). */
async function logTicket(id) {
  const call = async (path, body, token) => {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  apiToken ??= (await call("/api/v1/auth/login", { username: "admin", password })).access_token;
  return (await call("/api/v1/ws-tickets", { purpose: "container.logs", resource_id: id }, apiToken)).ticket;
}

async function signIn(page) {
  await page.goto("/");
  await page.getByLabel("Username or email").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("whoami").getByText("admin", { exact: true }).first().waitFor();
}

/** A light page to start each navigation from (and to let the previous one unmount). */
async function away(page) {
  await page.evaluate(() => window.__perf.go("/users"));
  await page.getByRole("heading", { name: "Users" }).waitFor();
  await page.waitForTimeout(300);
}

/** Navigation to each URL (alternating, after a warm-up of each), `rounds` times: every sample. */
async function timeNavigations(page, urls, readySelector) {
  const samples = urls.map(() => ({ dom: [], painted: [] }));
  for (let round = -1; round < rounds; round++) {
    for (const [i, url] of urls.entries()) {
      await away(page);
      const taken = await page.evaluate(([u, s]) => window.__perf.navigate(u, s), [url, readySelector]);
      if (round >= 0) {
        samples[i].dom.push(taken.dom);
        samples[i].painted.push(taken.painted);
      }
    }
  }
  return samples.map((s) => ({ dom: median(s.dom), painted: median(s.painted), samples: s.painted }));
}

async function containersBefore(page) {
  const [nav] = await timeNavigations(page, ["/containers"], '[data-testid="container-row"]');
  const rows = await page.getByTestId("container-count").innerText();
  return { nav, shown: rows };
}

async function containersMain(page) {
  const one = setting("DCP_PERF_ONE_NAME");
  const row = '[data-testid="container-row"]';
  const list = '[data-testid="container-list"]';
  log("containers: navigation, full list and one row");
  const [full, filtered] = await timeNavigations(page, ["/containers", `/containers?q=${encodeURIComponent(one)}`], row);
  const filteredCount = await page.getByTestId("container-count").innerText();
  await away(page);
  await page.evaluate(() => window.__perf.go("/containers"));
  await page.locator(row).first().waitFor();
  const fullCount = await page.getByTestId("container-count").innerText();
  const listed = Number(fullCount.split(" of ")[0]);
  log("containers: scrolling", fullCount);
  const idle = await page.evaluate(([s, r]) => window.__perf.idle(s, r, 1000), [list, row]);
  const drag = await page.evaluate(([s, r]) => window.__perf.drag(s, r, 2000), [list, row]);
  const wheel = await page.evaluate(([s, r]) => window.__perf.wheel(s, r, 2000, 60), [list, row]);
  return { full: { ...full, shown: fullCount, listed }, filtered: { ...filtered, shown: filteredCount }, idle, drag, wheel };
}

async function logs(page, id, expected) {
  const count = '[data-testid="log-count"]';
  const scroller = '[data-testid="log-lines"]';
  const row = ".log-line";
  const url = `/containers/${encodeURIComponent(id)}?host=local&tab=logs`;
  // The viewer opens on the last 1,000 lines; then "all" reconnects and loads every line.
  // A first visit (not timed) loads what the page needs once, whichever log goes first.
  await away(page);
  await page.evaluate(([u, c, text]) => window.__perf.navigateUntilText(u, c, text), [url, count, lines(Math.min(1000, expected))]);
  await away(page);
  const opened = await page.evaluate(([u, c, text]) => window.__perf.navigateUntilText(u, c, text), [url, count, lines(Math.min(1000, expected))]);
  await page.waitForTimeout(300);
  // Median of `loads` loads (back to 1,000 lines between them).
  const tail = (value, text) => page.evaluate(([v, c, t]) => window.__perf.changeUntil('select[aria-label="Tail"]', v, "change", c, t, true), [value, count, text]);
  const loadSamples = [];
  for (let i = 0; i < loads; i++) {
    if (i > 0) {
      await tail("1000", lines(Math.min(1000, expected)));
      await page.waitForTimeout(300);
    }
    loadSamples.push(await tail("all", lines(expected)));
  }
  const load = { ...medianBy(loadSamples, (s) => s.painted), samples: loadSamples.map((s) => s.painted) };
  const heapMb = await page.evaluate(() => window.__perf.heapMb());
  log(`logs ${expected}: loaded in ${load.painted.toFixed(0)} ms`);
  // The same stream (as the UI asks for it) without the UI: what the server and the socket take.
  const streamUrl = `${base.replace(/^http/, "ws")}/ws/containers/${encodeURIComponent(id)}/logs?host=local&tail=all&follow=true&timestamps=true`;
  const rawSamples = [];
  for (let i = 0; i < loads; i++) {
    const sample = await page.evaluate(([u, t]) => window.__perf.rawStream(u, t), [streamUrl, await logTicket(id)]);
    if (sample.lines !== expected) throw new Error(`the bare socket received ${sample.lines} lines, not ${expected}`);
    rawSamples.push(sample);
  }
  const raw = { ...medianBy(rawSamples, (s) => s.ms), samples: rawSamples.map((s) => s.ms) };
  log(`logs ${expected}: bare socket ${raw.ms.toFixed(0)} ms, ${raw.messages} messages`);
  await page.waitForTimeout(300);
  const idle = await page.evaluate(([s, r]) => window.__perf.idle(s, r, 1000), [scroller, row]);
  const drag = await page.evaluate(([s, r]) => window.__perf.drag(s, r, 2000), [scroller, row]);
  const wheel = await page.evaluate(([s, r]) => window.__perf.wheel(s, r, 2000, 60), [scroller, row]);
  // Typing "777" a key at a time (each key filters every line), then clearing the box.
  const matches = (needle) => {
    let n = 0;
    for (let i = 1; i <= expected; i++) if (String(i).includes(needle)) n++;
    return n;
  };
  const keys = [];
  for (const needle of ["7", "77", "777"]) {
    const text = `${matches(needle).toLocaleString("en")} of ${lines(expected)}`;
    keys.push(await page.evaluate(([c, v, t]) => window.__perf.changeUntil('input[aria-label="Search logs"]', v, "input", c, t, false), [count, needle, text]));
  }
  const clear = await page.evaluate(([c, t]) => window.__perf.changeUntil('input[aria-label="Search logs"]', "", "input", c, t, false), [count, lines(expected)]);
  return { lines: expected, opened, load, raw, heapMb, idle, drag, wheel, search: { keys, clear } };
}

const browser = await chromium.launch({
  executablePath: chromiumPath,
  // Root cannot use chromium's sandbox.
  args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
});
const result = { mode };
try {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1360, height: 860 } });
  await context.addInitScript(installHelpers);
  const page = await context.newPage();
  page.setDefaultTimeout(120_000);
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await signIn(page);
  log("signed in");
  if (mode === "before") {
    result.containers = await containersBefore(page);
  } else {
    result.containers = await containersMain(page);
    log("logs: small");
    result.smallLog = await logs(page, setting("DCP_PERF_SMALL_LOG"), Number(setting("DCP_PERF_SMALL_LINES")));
    log("logs: big");
    result.bigLog = await logs(page, setting("DCP_PERF_BIG_LOG"), Number(setting("DCP_PERF_BIG_LINES")));
  }
  result.pageErrors = errors;
} catch (error) {
  // What the page showed when it failed.
  const shot = join(tmpdir(), `dcp-perf-${mode}-failure.png`);
  for (const context of browser.contexts())
    for (const open of context.pages()) await open.screenshot({ path: shot }).catch(() => {});
  log(`failed; the page is in ${shot}`);
  throw error;
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);

// The UI in Debian's chromium against a real dcp server with a real Docker engine and sshd.
// Started by `tests/browser.rs` (cargo test), which passes the server's address and the
// test users' passwords in the environment; the steps run in order and share the server.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests through \`cargo test --test browser\``);
  return value;
}

const base = setting("DCP_UI_URL");
const run = setting("DCP_UI_RUN");
const artifacts = setting("DCP_UI_ARTIFACTS");
const passwords = {
  admin: setting("DCP_UI_ADMIN_PASSWORD"),
  "ui-operator": setting("DCP_UI_OPERATOR_PASSWORD"),
  "ui-viewer": setting("DCP_UI_VIEWER_PASSWORD"),
  "ui-newcomer": setting("DCP_UI_NEWCOMER_PASSWORD"),
};
const image = process.env.DCP_TEST_DOCKER_IMAGE ?? "dcp-test/busybox:latest";
const containerName = `ui-${run}-ticker`;
const hostName = `ui-${run}-ssh`;

let browser: Browser;
const contexts: BrowserContext[] = [];
/** Uncaught errors of any page: each test ends with none. */
const pageErrors: string[] = [];

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: setting("DCP_TEST_CHROMIUM"),
    // Root (CI) cannot use chromium's sandbox.
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
});

afterEach(() => {
  expect(pageErrors.splice(0), "uncaught errors in the page").toEqual([]);
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
});

/** A fresh browser profile (its own cookies), with page errors failing the test. */
async function newPage(): Promise<Page> {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1360, height: 860 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (error) => pageErrors.push(error.message));
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: false });
}

async function signIn(page: Page, username: keyof typeof passwords, password = passwords[username]): Promise<void> {
  await page.goto("/");
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signedIn(username: keyof typeof passwords): Promise<Page> {
  const page = await newPage();
  await signIn(page, username);
  await page.getByTestId("whoami").getByText(username).waitFor();
  return page;
}

/** Follows a link of the main navigation. */
async function openFromMenu(page: Page, label: string): Promise<void> {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: label, exact: true }).click();
}

/** An API call with a user's own token, as a script (not the UI) would make it. */
async function apiAs(username: keyof typeof passwords, method: string, path: string, body?: unknown) {
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password: passwords[username] }),
  });
  const { access_token } = (await login.json()) as { access_token: string };
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => null)) as { error?: { code?: string } } | null };
}

let admin: Page;
let operator: Page;
let containerUrl = "";

describe("signing in", () => {
  it("refuses a wrong password with the API's message, then signs the admin in", async () => {
    admin = await newPage();
    await signIn(admin, "admin", "not-the-password");
    await admin.getByRole("alert").waitFor();
    expect(await admin.getByRole("alert").innerText()).toMatch(/invalid|incorrect|wrong/i);
    await screenshot(admin, "login");
    await signIn(admin, "admin");
    await admin.getByRole("heading", { name: "Dashboard" }).waitFor();
    await admin.getByTestId("dashboard-host").filter({ hasText: "local" }).waitFor();
    await admin.getByTestId("live-status").getByText("live").waitFor();
  });

  it("makes a user with a temporary password choose a new one first", async () => {
    const page = await newPage();
    await signIn(page, "ui-newcomer");
    await page.getByRole("heading", { name: "Choose a new password" }).waitFor();
    await page.getByLabel("Current password").fill(passwords["ui-newcomer"]);
    await page.getByLabel("New password", { exact: true }).fill("short");
    await page.getByLabel("New password again").fill("short");
    await page.getByRole("button", { name: "Change password" }).click();
    expect(await page.getByRole("alert").innerText()).toContain("at least 8");
    const fresh = `${passwords["ui-newcomer"]}-renewed`;
    await page.getByLabel("New password", { exact: true }).fill(fresh);
    await page.getByLabel("New password again").fill(fresh);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    passwords["ui-newcomer"] = fresh;
  });

  it("keeps the session across a reload (refresh cookie) and ends it on sign out", async () => {
    const page = await signedIn("ui-newcomer");
    await page.reload();
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
    expect(storage).not.toContain("ey"); // no JWT in web storage
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await page.reload();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
  });

  it("renews the session by itself when the access token expires", async () => {
    const ttl = Number(setting("DCP_UI_ACCESS_TOKEN_TTL_SECS"));
    expect(ttl, "a short token lifetime (tests/browser.rs sets it)").toBeLessThanOrEqual(30);
    const page = await signedIn("ui-operator");
    await page.waitForTimeout((ttl + 3) * 1000);
    await openFromMenu(page, "Volumes");
    await page.getByRole("heading", { name: "Volumes", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Create volume" }).waitFor();
    expect(await page.getByRole("button", { name: "Sign in" }).count()).toBe(0);
  });

  it("shows the dashboard with container counts", async () => {
    await admin.goto("/");
    await admin.getByTestId("count-running").waitFor();
    await screenshot(admin, "dashboard");
  });
});

describe("containers", () => {
  it("creates a container from the form as an operator", async () => {
    operator = await signedIn("ui-operator");
    await openFromMenu(operator, "Containers");
    await operator.getByRole("button", { name: "Create container" }).click();
    await operator.getByRole("heading", { name: "Create container" }).waitFor();
    expect(await operator.getByText("Host access (admins only)").count()).toBe(0);
    await operator.locator('input[name="image"]').fill(image);
    await operator.locator('input[name="name"]').fill(containerName);
    await operator.locator('input[name="command"]').fill(`sh -c 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'`);
    await operator.locator('input[name="start"]').uncheck();
    await screenshot(operator, "container-create");
    await operator.getByRole("button", { name: "Create", exact: true }).click();
    await operator.getByRole("heading", { name: containerName }).waitFor();
    containerUrl = new URL(operator.url()).pathname + new URL(operator.url()).search;
    expect(containerUrl).toMatch(/^\/containers\/[0-9a-f]{64}\?host=local$/);
  });

  it("lists it, then starts it and sees it running", async () => {
    await openFromMenu(operator, "Containers");
    await operator.getByLabel("Search containers").fill(containerName);
    const row = operator.getByTestId("container-row").filter({ hasText: containerName }).filter({ hasText: "local" });
    await row.getByText("created", { exact: true }).first().waitFor();
    await screenshot(operator, "containers");
    await row.getByRole("link", { name: containerName }).first().click();
    await operator.getByRole("button", { name: "Start", exact: true }).click();
    await operator.getByText("running", { exact: true }).first().waitFor();
  });

  it("shows its logs live", async () => {
    await operator.getByRole("tab", { name: "Logs" }).click();
    const lines = operator.getByTestId("log-lines");
    await lines.locator(".log-line", { hasText: "tick 3" }).first().waitFor();
    await expect.poll(async () => lines.locator(".log-line").count(), { timeout: 15_000 }).toBeGreaterThan(5);
    await screenshot(operator, "container-logs");
  });

  it("runs echo hello in the terminal and shows the output", async () => {
    await operator.getByRole("tab", { name: "Terminal" }).click();
    const terminal = operator.getByTestId("terminal");
    await terminal.locator(".xterm").waitFor();
    await terminal.click();
    // The shell's prompt means the exec session is up.
    await expect.poll(async () => terminal.innerText(), { timeout: 15_000 }).toMatch(/[#$] ?$/m);
    await operator.keyboard.type("echo hello-from-$((40+2))");
    await operator.keyboard.press("Enter");
    await expect.poll(async () => terminal.innerText(), { timeout: 15_000 }).toContain("hello-from-42");
    await screenshot(operator, "container-terminal");
  });

  it("charts its stats as they move", async () => {
    await operator.getByRole("tab", { name: "Stats" }).click();
    const samples = operator.getByTestId("stats-samples");
    await expect.poll(async () => Number((await samples.innerText()).replace(/\D/g, "")), { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    expect(await operator.getByTestId("stats-cpu").innerText()).toMatch(/\d/);
    expect(await operator.getByTestId("stats-memory").innerText()).toMatch(/\d/);
    expect(await operator.locator("canvas").count()).toBeGreaterThan(0);
    await screenshot(operator, "container-stats");
  });

  it("stops it, and its history shows what happened", async () => {
    await operator.getByRole("button", { name: "Stop", exact: true }).click();
    await operator.getByText("exited", { exact: true }).first().waitFor({ timeout: 30_000 });
    await operator.getByRole("tab", { name: "History" }).click();
    const history = operator.getByTestId("history");
    await history.getByText(/ContainerStarted|started/i).first().waitFor();
    await history.getByText(/ContainerStopped|stopped/i).first().waitFor();
    await screenshot(operator, "container-history");
  });

  it("shows the operator's actions in the admin's audit log", async () => {
    await admin.goto("/audit");
    await admin.getByTestId("audit-row").first().waitFor();
    for (const action of ["container.start", "container.stop"]) {
      await admin.getByLabel("Action").fill(action);
      await admin.getByRole("button", { name: "Apply filters" }).click();
      await admin.getByTestId("audit-row").filter({ hasText: action }).filter({ hasText: "ui-operator" }).first().waitFor();
    }
    await screenshot(admin, "audit-log");
  });
});

describe("a viewer", () => {
  it("sees no control that changes anything", async () => {
    const viewer = await signedIn("ui-viewer");
    await openFromMenu(viewer, "Containers");
    await viewer.getByTestId("container-row").first().waitFor();
    expect(await viewer.getByRole("button", { name: "Create container" }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: /selected/ }).count()).toBe(0);
    expect(await viewer.getByRole("checkbox").count()).toBe(0);
    await viewer.goto(containerUrl);
    await viewer.getByRole("heading", { name: containerName }).waitFor();
    for (const name of ["Start", "Stop", "Restart", "Kill", "Remove", "Rename", "Pause"]) {
      expect(await viewer.getByRole("button", { name, exact: true }).count(), name).toBe(0);
    }
    expect(await viewer.getByRole("tab", { name: "Terminal" }).count()).toBe(0);
    await viewer.getByRole("tab", { name: "Logs" }).click();
    await viewer.getByTestId("log-lines").locator(".log-line").first().waitFor();
    // Every button a viewer is shown, on every page, is one that only reads.
    const readOnly = /^(Refresh|Sign out|Close|Dismiss|Load more|Load history|Load older|Apply filters|Clear filters|Pause|Resume \(\d+ new\)|Details of event \d+|Reconnect|Jump to bottom|Download|Clear|Raw inspect JSON|Overview|Logs|Stats|History)$/;
    for (const path of ["/", "/containers", containerUrl, "/images", "/volumes", "/networks", "/hosts", "/events"]) {
      await viewer.goto(path);
      await viewer.getByRole("heading", { level: 1 }).first().waitFor();
      await viewer.waitForLoadState("networkidle");
      const names = await viewer.getByRole("button").evaluateAll((buttons) => buttons.map((b) => (b.getAttribute("aria-label") ?? b.textContent ?? "").trim()));
      expect(names.filter((name) => !readOnly.test(name)), path).toEqual([]);
    }
    expect(await viewer.getByRole("link", { name: "Users" }).count()).toBe(0);
    await viewer.goto("/users");
    await viewer.getByRole("heading", { name: "Not allowed" }).waitFor();
    await screenshot(viewer, "viewer-containers");
  });

  it("gets 403 FORBIDDEN when it forces a change through the API", async () => {
    const id = containerUrl.split("/")[2]!.split("?")[0]!;
    const stop = await apiAs("ui-viewer", "POST", `/api/v1/containers/${id}/start?host=local`, {});
    expect(stop.status).toBe(403);
    expect(stop.body?.error?.code).toBe("FORBIDDEN");
    const create = await apiAs("ui-viewer", "POST", "/api/v1/containers?host=local", { image });
    expect(create.status).toBe(403);
  });
});

describe("a protected container", () => {
  const guardedName = `ui-${run}-guarded`;
  let guardedUrl = "";

  it("is out of an operator's reach: no operations, no logs, no terminal", async () => {
    const created = await apiAs("admin", "POST", "/api/v1/containers?host=local", {
      image,
      name: guardedName,
      command: ["sleep", "600"],
      labels: { "dcp.protected": "true" },
      start: true,
    });
    expect(created.status).toBe(201);
    const id = (created.body as unknown as { container_id: string }).container_id;
    guardedUrl = `/containers/${id}?host=local`;
    await openFromMenu(operator, "Containers");
    await operator.getByLabel("Search containers").fill(guardedName);
    const row = operator.getByTestId("container-row").filter({ hasText: guardedName });
    await row.getByTestId("protected-badge").waitFor();
    expect(await row.getByRole("checkbox").isDisabled()).toBe(true);
    await operator.goto(guardedUrl);
    await operator.getByTestId("container-protection").waitFor();
    expect(await operator.getByTestId("container-protection").innerText()).toContain("dcp.protected=true");
    for (const name of ["Stop", "Restart", "Kill", "Remove", "Rename"]) {
      expect(await operator.getByRole("button", { name, exact: true }).count(), name).toBe(0);
    }
    expect(await operator.getByRole("tab", { name: "Logs" }).count()).toBe(0);
    expect(await operator.getByRole("tab", { name: "Terminal" }).count()).toBe(0);
    await screenshot(operator, "container-protected-operator");
    const forced = await apiAs("ui-operator", "POST", `/api/v1/containers/${id}/stop?host=local`, {});
    expect(forced.status).toBe(403);
  });

  it("asks an admin why, and the audit log keeps the reason", async () => {
    await admin.goto(guardedUrl);
    await admin.getByTestId("container-protection").waitFor();
    await admin.getByRole("button", { name: "Stop", exact: true }).click();
    const dialog = admin.getByRole("dialog");
    await dialog.getByLabel("Reason").fill(`ui-${run} maintenance window`);
    await screenshot(admin, "container-protected-reason");
    await dialog.getByRole("button", { name: "Stop", exact: true }).click();
    await admin.getByText("exited", { exact: true }).first().waitFor({ timeout: 30_000 });
    await admin.goto("/audit");
    await admin.getByLabel("Action").fill("container.stop");
    await admin.getByRole("button", { name: "Apply filters" }).click();
    await admin.getByTestId("audit-row").filter({ hasText: "container.stop" }).first().waitFor();
    const audit = await apiAs("admin", "GET", "/api/v1/audit-logs?action=container.stop&limit=20");
    expect(JSON.stringify(audit.body)).toContain(`ui-${run} maintenance window`);
  });
});

describe("an SSH host", () => {
  it("is added with the setup wizard against the test sshd", async () => {
    const port = process.env.DCP_TEST_SSHD_PORT ?? "52222";
    const user = process.env.DCP_TEST_SSH_USER ?? "dcp-ssh";
    const sshPassword = readFileSync(setting("DCP_TEST_SSH_PASSWORD_FILE"), "utf8").trim();
    await admin.goto("/hosts");
    await admin.getByRole("button", { name: "Add host" }).click();
    const wizard = admin.getByRole("dialog");
    await wizard.getByText("SSH Host Setup").waitFor();
    await wizard.locator('input[name="connection_name"]').fill(hostName);
    await wizard.locator('input[name="hostname"]').fill("127.0.0.1");
    await wizard.locator('input[name="port"]').fill(port);
    await wizard.locator('input[name="username"]').fill(user);
    await screenshot(admin, "wizard-connection");
    await wizard.getByRole("button", { name: "Next" }).click();

    await wizard.locator('input[name="method"][value="password"]').check();
    await wizard.locator('input[name="password"]').fill(sshPassword);
    await wizard.getByRole("button", { name: "Next" }).click();

    // The first test reads the host key only; the password goes to a confirmed key.
    await wizard.getByRole("button", { name: "Run test" }).click();
    const fingerprint = wizard.getByTestId("host-key-fingerprint");
    await fingerprint.waitFor();
    expect(await fingerprint.innerText()).toMatch(/SHA256:/);
    await wizard.locator('input[name="confirm_fingerprint"]').check();
    await wizard.getByRole("button", { name: "Run test" }).click();
    await wizard.getByText(/passed|succeeded|authenticated/i).first().waitFor();
    await screenshot(admin, "wizard-ssh-test");
    await wizard.getByRole("button", { name: "Next" }).click();

    await wizard.getByRole("button", { name: "Run test" }).click();
    await wizard.getByText(/passed|succeeded/i).first().waitFor({ timeout: 30_000 });
    await screenshot(admin, "wizard-docker-test");
    await wizard.getByRole("button", { name: "Next" }).click();

    await wizard.locator('input[name="tags"]').fill("ui, test");
    await wizard.getByRole("button", { name: "Finish" }).click();
    await wizard.waitFor({ state: "detached" });
    const row = admin.getByTestId("host-row").filter({ hasText: hostName });
    await row.getByText("active").waitFor({ timeout: 30_000 });
    await screenshot(admin, "hosts");
  });

  it("lists the SSH host's containers beside the local ones", async () => {
    await admin.goto("/containers");
    await admin.getByLabel("Host").selectOption({ label: hostName });
    await admin.getByTestId("container-row").filter({ hasText: hostName }).first().waitFor();
  });

  it("is removed from the hosts page", async () => {
    await admin.goto("/hosts");
    const row = admin.getByTestId("host-row").filter({ hasText: hostName });
    await row.getByRole("button", { name: "Remove" }).click();
    await admin.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await row.waitFor({ state: "detached" });
  });
});

describe("the other pages", () => {
  it("render for an admin", async () => {
    for (const [path, heading, name] of [
      ["/images", "Images", "images"],
      ["/volumes", "Volumes", "volumes"],
      ["/networks", "Networks", "networks"],
      ["/users", "Users", "users"],
      ["/events", "Events", "events"],
    ] as const) {
      await admin.goto(path);
      await admin.getByRole("heading", { name: heading, level: 1 }).waitFor();
      await screenshot(admin, name);
    }
    // The feed starts with what happens while the page is open; admins can load the past.
    await admin.getByRole("button", { name: "Load history" }).click();
    await admin.getByTestId("event-row").first().waitFor();
    await screenshot(admin, "events");
  });

  it("removes the container from its page", async () => {
    await operator.goto(containerUrl);
    await operator.getByRole("button", { name: "Remove", exact: true }).click();
    const dialog = operator.getByRole("dialog");
    await dialog.getByRole("button", { name: "Remove" }).click();
    await operator.waitForURL((url) => url.pathname === "/containers");
  });
});

// The portal end to end in a real browser: Debian's Chromium driven by playwright-core, against
// orrery-local. Run by scripts/test.sh with
//   ORRERY_PORTAL_URL       the orrery-local to test (http://127.0.0.1:<port>)
//   ORRERY_PORTAL_ADMIN_KEY its admin key (the test makes its own account)
//   ORRERY_PORTAL_SHOTS     where the screenshots go (printed at the end)
// Any console error, page error, failed request or HTTP error response fails the test.

import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

const BASE = process.env.ORRERY_PORTAL_URL;
const ADMIN = process.env.ORRERY_PORTAL_ADMIN_KEY;
const SHOTS = path.resolve(process.env.ORRERY_PORTAL_SHOTS ?? "portal-screenshots");
const CHROMIUM = process.env.ORRERY_CHROMIUM ?? "/usr/bin/chromium";
assert.ok(BASE && ADMIN, "set ORRERY_PORTAL_URL and ORRERY_PORTAL_ADMIN_KEY (scripts/test.sh does)");

let browser;
let context;
let page;
let key;
let receiver;
const received = [];
const problems = [];

/** Every console error, page error, failed request and HTTP error of a page is a problem, and
 * so is the key in any URL the page asks for (requests and WebSockets). */
function watch(target) {
  const leaks = (url) => key && url.includes(key);
  target.on("request", (request) => {
    if (leaks(request.url())) problems.push(`the key in a URL: ${request.url()}`);
  });
  target.on("websocket", (socket) => {
    if (leaks(socket.url())) problems.push(`the key in a WebSocket URL: ${socket.url()}`);
  });
  target.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  target.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  target.on("requestfailed", (request) =>
    problems.push(`request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`),
  );
  target.on("response", (response) => {
    if (response.status() >= 400) {
      problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
    }
  });
}

function noProblems(step) {
  assert.deepEqual(problems.splice(0), [], `${step}: no console error or failed request`);
}

async function shoot(name, target = page) {
  await target.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Every form control on the page has an accessible name (a label, aria-label or its text). */
async function everyControlIsLabelled(target = page) {
  const unlabelled = await target.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => !(el instanceof HTMLInputElement && el.type === "hidden"))
      .filter((el) => {
        const labelled =
          (el.labels && el.labels.length > 0) ||
          el.getAttribute("aria-label") ||
          el.getAttribute("aria-labelledby") ||
          (el.tagName === "BUTTON" && el.textContent.trim());
        return !labelled;
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
  assert.deepEqual(unlabelled, [], "every control has a label");
}

/** What shows once a page has loaded its data (a hash change leaves no network state to wait
 * for). */
async function ready(name, target = page) {
  await target.getByRole("heading", { level: 1, name }).waitFor();
  const marker = {
    Usage: target.locator(".chart canvas").first(),
    Keys: target.getByRole("table", { name: "API keys" }),
    Webhooks: target.getByRole("table", { name: "Webhook endpoints" }),
    Batches: target.getByRole("table", { name: "Recent batches" }),
    Playground: target.getByRole("button", { name: "Draw the chart" }),
  }[name];
  await marker.waitFor();
}

async function openPage(name) {
  await page.getByRole("link", { name, exact: true }).click();
  await ready(name);
}

/** Polls `probe` until it returns true (at most 15 s). */
async function until(probe, what) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await page.waitForTimeout(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  receiver = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body });
      response.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const created = await fetch(`${BASE}/v1/admin/accounts`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "Portal e2e", tier: "premium" }),
  });
  assert.equal(created.status, 201);
  key = (await created.json()).api_key.key;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  page = await context.newPage();
  watch(page);
  page.on("dialog", (dialog) => dialog.accept());
});

after(async () => {
  await browser?.close();
  receiver?.close();
  console.log(`portal screenshots: ${SHOTS}`);
});

test("sign in with a key kept in session storage only", async () => {
  await page.goto(BASE);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Usage" }).waitFor();
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem("orrery.api-key"),
    local: JSON.stringify(localStorage),
    cookie: document.cookie,
    url: location.href,
  }));
  assert.equal(stored.session, key);
  assert.ok(!stored.local.includes(key), "not in localStorage");
  assert.equal(stored.cookie, "", "no cookie");
  assert.ok(!stored.url.includes(key), "not in the URL");
  await page.getByRole("heading", { name: "Today's quotas" }).waitFor();
  await page.locator(".quota").first().waitFor();
  assert.ok((await page.locator(".quota").count()) >= 4, "a row per quota class");
  await page.locator(".chart canvas").first().waitFor();
  await page.getByRole("heading", { name: "Latency, last 24 hours" }).waitFor();
  await everyControlIsLabelled();
  await shoot("usage");
  noProblems("usage");
});

test("keys: create one shown once and copied, rotate it with grace, revoke it", async () => {
  await openPage("Keys");
  await page.getByLabel("Name", { exact: true }).fill("ci-e2e");
  await page.getByLabel("Mode").selectOption("test");
  await page.getByRole("checkbox", { name: "keys" }).uncheck();
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = page.locator("[data-secret]");
  await secret.waitFor();
  const created = (await secret.textContent()).trim();
  assert.match(created, /^orr_test_/);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied to the clipboard.").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), created);
  const row = page.getByRole("row", { name: /ci-e2e/ });
  await row.first().waitFor();
  await everyControlIsLabelled();

  await page.getByLabel("Grace period for rotating ci-e2e").first().selectOption("3600");
  await page.getByRole("button", { name: "Rotate ci-e2e" }).first().click();
  await page.getByText("New key for ci-e2e").waitFor();
  const rotated = (await page.locator("[data-secret]").textContent()).trim();
  assert.notEqual(rotated, created);
  await page.getByText(/Rotated ci-e2e/).waitFor();
  await until(async () => (await page.getByRole("row", { name: /ci-e2e/ }).count()) === 2, "old and new rows");
  const rows = page.getByRole("row", { name: /ci-e2e/ });
  const oldRow = rows.filter({ hasText: created.slice(0, 15) });
  assert.equal(await oldRow.getByRole("button", { name: /Rotate/ }).count(), 0, "a rotated key is not rotated again");

  // Revoke the new key: refused at once, while the old one works out its grace period.
  const newRow = rows.filter({ hasText: rotated.slice(0, 15) });
  await newRow.getByRole("button", { name: "Revoke ci-e2e" }).click();
  await page.getByText("Revoked ci-e2e.").waitFor();
  await rows.filter({ hasText: rotated.slice(0, 15) }).filter({ hasText: "revoked" }).waitFor();
  const refused = await fetch(`${BASE}/v1/api-keys`, { headers: { "x-api-key": rotated } });
  const stillWorks = await fetch(`${BASE}/v1/charts/saved`, { headers: { "x-api-key": created } });
  assert.equal(refused.status, 401, "the revoked key is refused");
  assert.equal(stillWorks.status, 200, "the old key works through its grace period");
  await shoot("keys");
  noProblems("keys");
});

test("webhooks: register an endpoint, send a test, read the delivery log", async () => {
  await openPage("Webhooks");
  const url = `http://127.0.0.1:${receiver.address().port}/hooks/orrery`;
  await page.getByLabel("URL").fill(url);
  await page.getByLabel("Description (optional)").fill("e2e receiver");
  await page.getByRole("checkbox", { name: "key.created" }).check();
  await page.getByRole("checkbox", { name: "batch.completed" }).check();
  await page.getByRole("button", { name: "Register endpoint" }).click();
  const secret = page.locator("[data-secret]");
  await secret.waitFor();
  assert.match((await secret.textContent()).trim(), /^whsec_/);
  await page.getByRole("button", { name: `Send a test event to ${url}` }).click();
  await page.getByText(/Test delivered: HTTP 204/).waitFor();
  assert.ok(received.length >= 1, "the receiver got the test");
  assert.ok(received.at(-1).headers["webhook-signature"], "signed");
  assert.equal(JSON.parse(received.at(-1).body).type, "webhook.test");
  // A real event: a key created through the API is delivered to the endpoint, and the
  // delivery log shows it (test sends are answered at once and not logged).
  const createdKey = await fetch(`${BASE}/v1/api-keys`, {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json" },
    body: JSON.stringify({ name: "hooked" }),
  });
  assert.equal(createdKey.status, 201);
  const log = page.getByRole("table", { name: `Deliveries to ${url}` });
  const deadline = Date.now() + 20_000;
  let delivered = false;
  while (!delivered && Date.now() < deadline) {
    await page.getByRole("button", { name: `Delivery log of ${url}` }).click();
    await log.waitFor();
    delivered = (await log.getByRole("row", { name: /key\.created.*delivered/ }).count()) > 0;
    if (!delivered) await page.waitForTimeout(300);
  }
  assert.ok(delivered, "the key.created delivery is in the log");
  assert.ok(received.some((r) => JSON.parse(r.body).type === "key.created"), "and at the receiver");

  // Rotate the signing secret: the new one is shown once; replay finds nothing dead-lettered.
  await page.getByRole("button", { name: `Rotate the signing secret of ${url}` }).click();
  await page.getByText(`New signing secret of ${url}`).waitFor();
  const rotatedSecret = (await page.locator("[data-secret]").textContent()).trim();
  assert.match(rotatedSecret, /^whsec_/);
  await page.getByText(/Rotated: the previous secret also signs until/).waitFor();
  await page.getByRole("button", { name: `Replay failed deliveries to ${url}` }).click();
  await page.getByText("Queued 0 dead-lettered deliveries again.").waitFor();
  await everyControlIsLabelled();
  await shoot("webhooks");
  noProblems("webhooks");
});

test("batches: submit JSON Lines, watch it finish live, download the results", async () => {
  await openPage("Batches");
  // Progress comes over the real-time WebSocket: watch its frames.
  const frames = [];
  page.on("websocket", (socket) => socket.on("framereceived", (frame) => frames.push(String(frame.payload))));
  // Uploaded as a JSON Lines file (the textarea takes pasted lines the same way).
  const jsonl = [
    { custom_id: "ada", operation: "chart", body: { datetime: "1990-05-17T14:30", timezone: "Europe/London", latitude: 51.5074, longitude: -0.1278 } },
    { custom_id: "ada-reading", operation: "reading", body: { datetime: "1990-05-17T14:30", timezone: "Europe/London", latitude: 51.5074, longitude: -0.1278 } },
    { custom_id: "grace", operation: "chart", body: { datetime: "1985-12-09T08:15", timezone: "America/New_York", latitude: 40.7128, longitude: -74.006 } },
  ]
    .map((line) => JSON.stringify(line))
    .join("\n");
  await page.getByLabel("Or upload a JSON Lines file").setInputFiles({
    name: "items.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(jsonl),
  });
  await page.waitForFunction(
    (expected) => document.querySelector("textarea[name=lines]")?.value === expected,
    jsonl,
  );
  await page.getByRole("button", { name: "Submit batch" }).click();
  await page.getByText(/Submitted batch_/).waitFor();
  const batchId = (await page.getByText(/Submitted batch_/).textContent()).match(/batch_[0-9a-z]+/)[0];
  await page.locator('[data-batch-status="completed"]').waitFor({ timeout: 30_000 });
  // The page learned of it from the socket, before its first poll (3 s after submitting).
  assert.equal(await page.locator('[data-batch-status="completed"]').getAttribute("data-source"), "socket");
  await page.getByText("3 of 3 settled").waitFor();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download results" }).click(),
  ]);
  const lines = (await readFile(await download.path(), "utf8")).trim().split("\n");
  assert.equal(lines.length, 3);
  const ids = lines.map((line) => JSON.parse(line).custom_id).sort();
  assert.deepEqual(ids, ["ada", "ada-reading", "grace"]);
  await page.getByRole("table", { name: "Recent batches" }).getByText("completed").first().waitFor();
  const live = frames
    .map((frame) => JSON.parse(frame))
    .filter((frame) => frame.type === "event" && frame.event?.data?.id === batchId);
  assert.ok(live.length >= 1, `the batch's events arrived over the WebSocket: ${frames.join(" | ")}`);
  await everyControlIsLabelled();
  await shoot("batches");
  noProblems("batches");
});

test("playground: a chart drawn from the form, with its JSON, reading and curl", async () => {
  await openPage("Playground");
  await page.getByLabel("House system").selectOption("whole_sign");
  await page.getByRole("button", { name: "Draw the chart" }).click();
  const wheel = page.getByRole("img", { name: /chart wheel of Ada/ });
  await wheel.waitFor();
  assert.ok(await wheel.evaluate((img) => img.complete && img.naturalWidth > 0), "the SVG rendered");
  const json = JSON.parse(await page.getByLabel("The chart as JSON").textContent());
  assert.ok(json.bodies.length >= 10, "planets");
  assert.equal(json.input_hash.length > 0, true);
  await page.getByRole("heading", { level: 2, name: /Ada/ }).waitFor();
  const curl = await page.getByLabel("curl command").textContent();
  assert.match(curl, /^curl -s -X POST http:\/\/127\.0\.0\.1:\d+\/v1\/charts/);
  assert.ok(curl.includes('"house_system":"whole_sign"'));
  assert.ok(!curl.includes(key), "the key is not printed");
  await everyControlIsLabelled();
  await shoot("playground");
  noProblems("playground");
});

test("dark theme, and every page reachable by keyboard", async () => {
  const toggle = page.getByRole("button", { name: "Dark theme" });
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");
  await toggle.click();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
  assert.equal(await page.getByRole("button", { name: "Dark theme" }).getAttribute("aria-pressed"), "true");
  await page.getByRole("button", { name: "Draw the chart" }).click();
  await page.getByRole("img", { name: /chart wheel of Ada/ }).waitFor();
  await shoot("playground-dark");
  await openPage("Usage");
  await shoot("usage-dark");
  // From the top of the page, Tab reaches every page's link and Enter opens it.
  let here = "Usage";
  for (const name of ["Keys", "Webhooks", "Batches", "Playground", "Usage"]) {
    await page.reload();
    await ready(here);
    let reached = false;
    for (let presses = 0; presses < 12 && !reached; presses++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(
        (label) => document.activeElement?.tagName === "A" && document.activeElement.textContent === label,
        name,
      );
    }
    assert.ok(reached, `Tab reaches ${name}`);
    await page.keyboard.press("Enter");
    await ready(name);
    // The new page's heading has the focus: reading starts there.
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1");
    here = name;
  }
  await page.getByRole("button", { name: "Dark theme" }).click();
  noProblems("theme and keyboard");
});

test("readable on a phone: no page scrolls sideways", async () => {
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const small = await phone.newPage();
  watch(small);
  await small.goto(BASE);
  await small.getByLabel("API key").fill(key);
  await small.getByRole("button", { name: "Sign in" }).click();
  for (const name of ["Usage", "Keys", "Webhooks", "Batches", "Playground"]) {
    if (name !== "Usage") await small.getByRole("link", { name, exact: true }).click();
    await ready(name, small);
    const overflow = await small.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `${name} fits the phone's width (overflows by ${overflow}px)`);
    await shoot(`${name.toLowerCase()}-phone`, small);
  }
  await phone.close();
  noProblems("phone");
});

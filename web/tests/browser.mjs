// What the browser tests share: Chromium (Debian's package) under
// playwright-core, a page that collects its errors, axe-core, the
// authenticator's code, and asking the suite for a mailed message.
import { readFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

/** A variable the suite must have set. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** Chromium, headless, with nothing that reaches beyond the machine. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
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
}

/** A new page at laptop width, and the errors it logs (CSP refusals among them). */
export async function openPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/WebSocket|Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { context, page, problems };
}

// Evaluated through the DevTools protocol, which the page's content
// security policy (no inline scripts) does not govern.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core in the page: fails on any serious or critical violation. */
export async function accessible(page, what) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => await globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length > 0) {
    throw new Error(
      `${what}: accessibility violations:\n` +
        bad.map((v) => `  ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("\n"),
    );
  }
}

/** The authenticator's current code for a base32 key (RFC 6238: SHA-1, 6 digits, 30 s). */
export function totp(secret, at = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/[\s=]/g, "").toUpperCase()) {
    const index = alphabet.indexOf(c);
    if (index < 0) throw new Error(`not base32: ${c}`);
    bits += index.toString(2).padStart(5, "0");
  }
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

let replies;

/**
 * Asks the suite something (`<kind>? <argument>` out, one JSON line in):
 * `mail` (the newest message to an address) and `enroll` (run an enroll
 * command as a lab computer would) are what it answers.
 */
export async function ask(kind, argument) {
  replies ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(`${kind}? ${argument}`);
  const { value, done } = await replies.next();
  if (done) throw new Error("the suite closed its channel");
  return JSON.parse(value);
}

/** The newest message the app queued to `address` ({subject, text}), read by the suite from the outbox. */
export async function mailTo(address) {
  const message = await ask("mail", address);
  if (!message) throw new Error(`no mail to ${address}`);
  return message;
}

/** The first link in `text` to a path of the app, as a path and query. */
export function linkIn(text, path) {
  const match = text.match(new RegExp(`https?://\\S+?(${path.replace(/[/?]/g, "\\$&")}\\?\\S+)`));
  if (!match) throw new Error(`no ${path} link in:\n${text}`);
  return match[1];
}

/** Signs in at `base` and waits for the dashboard. */
export async function signIn(page, base, email, password) {
  await page.goto(base + "/sign-in");
  await page.getByRole("heading", { name: "Sign in", exact: true }).waitFor({ timeout: 15_000 });
  await page.getByLabel("E-mail", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { name: "Instruments", exact: true }).waitFor({ timeout: 15_000 });
}

/** On a failed check: where the page was, what it said, and a screenshot (`failure-<name>.png`). */
export async function reportFailure(page, shots, name) {
  if (!page) return;
  try {
    await page.screenshot({ path: `${shots}/failure-${name}.png` });
    const text = (await page.locator("body").innerText()).replace(/\s+/g, " ").slice(0, 1500);
    console.error(`at ${page.url()}: ${text}`);
  } catch {
    // The page may be gone with the browser; the error above says enough.
  }
}

/**
 * Runs one browser script's checks: Chromium, a page at laptop width, then
 * `checks(page)`. It passes (printing `ok`) when they return and the page
 * logged no error (`strict`: a CSP refusal fails too); else it prints what
 * failed, where the page was, and keeps a screenshot (`failure-<name>.png`).
 * Exits the process with the outcome.
 */
export async function runScript({ what, name, shots, strict = true }, checks) {
  const browser = await launch();
  let failed = false;
  let page;
  try {
    const opened = await openPage(browser);
    page = opened.page;
    await checks(page);
    if (strict && opened.problems.length > 0) throw new Error(opened.problems.join("\n"));
    console.log("ok");
  } catch (error) {
    failed = true;
    console.error(`${what} failed: ${error instanceof Error ? error.stack : error}`);
    await reportFailure(page, shots, name);
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

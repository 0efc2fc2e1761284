// The browser smoke path, driven by the black-box suite (tests/blackbox,
// `web.rs`) against a real stack: Debian's Chromium under playwright-core
// signs in, watches a simulated instrument's readings change on the
// dashboard without a reload, and signs out. The suite passes what it set
// up in the environment:
//
//   BASE_URL, EMAIL, PASSWORD    the host and a user of a fresh organization
//   INSTRUMENT_ID                an instrument a simulated bridge is relaying
//   LIVE                         "socket" (Workers, native) or "polling" (Spin)
//   SCREENSHOTS                  a folder for the screenshots of each page
//   UPDATES                      how many reading changes to watch (default 3)
//
// It prints `timing <name> <ms>` lines (the benchmark reads them) and `ok`.
// Every check that fails exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, runScript } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const live = env("LIVE");
const instrumentId = env("INSTRUMENT_ID");
const updates = Number(process.env.UPDATES ?? 3);
mkdirSync(shots, { recursive: true });

await runScript({ what: "browser smoke", name: "smoke", shots }, async (page) => {

  const started = Date.now();
  await page.goto(base + "/");
  await page.waitForURL(/\/sign-in$/, { timeout: 15_000 });
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await accessible(page, "sign-in");
  await page.screenshot({ path: join(shots, "sign-in.png") });

  await page.getByLabel("E-mail").fill(env("EMAIL"));
  await page.getByLabel("Password").fill(env("PASSWORD"));
  const navigated = Date.now();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Instruments" }).waitFor({ timeout: 15_000 });
  const card = page.locator(`[data-instrument="${instrumentId}"]`);
  await card.waitFor({ timeout: 15_000 });
  const state = page.locator("[data-live-state]");
  if (live === "socket") {
    await page.locator('[data-live-state="live"]').waitFor({ timeout: 15_000 });
  } else {
    await page.locator('[data-live-state="unavailable"]').waitFor({ timeout: 15_000 });
  }
  const ready = Date.now();
  console.log(`timing dashboard-ms ${ready - navigated} first-load-ms ${ready - started}`);

  // Each change of the newest reading's time on the card is a reading
  // that reached the page without a reload; its delay is now minus the
  // time the simulator took it (one clock: the same machine).
  const newest = async () =>
    card.locator("[data-metric] time").evaluateAll((times) => {
      const stamps = times.map((t) => t.getAttribute("datetime") ?? "").filter(Boolean);
      return stamps.sort((a, b) => Date.parse(a) - Date.parse(b)).at(-1) ?? "";
    });
  let seen = await newest();
  const delays = [];
  // The simulator reads every 500 ms: a second per update is ample.
  const deadline = Date.now() + (live === "socket" ? 30_000 : 90_000) + updates * 1000;
  while (delays.length < updates) {
    if (Date.now() > deadline) throw new Error(`only ${delays.length} reading changes seen; newest ${seen}`);
    const now = await newest();
    if (now !== "" && now !== seen) {
      delays.push(Date.now() - Date.parse(now));
      seen = now;
    }
    await page.waitForTimeout(20);
  }
  console.log(`timing reading-delays-ms ${delays.join(",")}`);
  console.log(`live-state ${await state.getAttribute("data-live-state")}`);
  await accessible(page, "dashboard");
  await page.screenshot({ path: join(shots, `dashboard-${live}.png`), fullPage: true });

  // Tablet width: the same page, still usable.
  await page.setViewportSize({ width: 820, height: 1100 });
  await page.screenshot({ path: join(shots, `dashboard-tablet-${live}.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // Add an instrument with the form its type's schema makes: a value out
  // of range is refused by the API, and the page says so at the field.
  await page.getByRole("button", { name: "Add instrument" }).click();
  const dialog = page.getByRole("dialog", { name: "Add an instrument" });
  await dialog.getByLabel("Name").fill("Incubator 7");
  await dialog.getByLabel("Type").selectOption({ label: "Incubator" });
  await dialog.getByLabel("Location (optional)").fill("Cell culture room");
  await dialog.getByLabel("Calibration interval (days)").fill("0");
  await dialog.getByRole("button", { name: "Add instrument" }).click();
  await dialog.locator("#configuration-calibrationIntervalDays-error").waitFor({ timeout: 10_000 });
  await accessible(page, "add instrument");
  await page.screenshot({ path: join(shots, "add-instrument.png") });
  await dialog.getByLabel("Calibration interval (days)").fill("180");
  await dialog.getByRole("button", { name: "Add instrument" }).click();
  await dialog.waitFor({ state: "hidden", timeout: 10_000 });
  await page.locator(".card h2", { hasText: "Incubator 7" }).waitFor({ timeout: 10_000 });

  const name = (await card.locator("h2").textContent()) ?? "";

  // The profile: this browser's login among the user's logins.
  await page.locator('header a[href="/profile"]').click();
  await page.getByRole("heading", { name: "Where you are signed in" }).waitFor();
  await page.getByText("This browser").waitFor({ timeout: 10_000 });
  await accessible(page, "profile");
  // A tall window rather than a full-page shot, which paints the sticky
  // header in the middle of the page.
  await page.setViewportSize({ width: 1280, height: 1400 });
  await page.screenshot({ path: join(shots, "profile.png") });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole("link", { name: "Instruments" }).click();
  await page.getByRole("heading", { name: "Instruments" }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/sign-in$/);
  // Back to the dashboard's entry in the history: the app shows the
  // sign-in page again, and nothing of what the session saw.
  await page.goBack();
  await page.waitForURL(/\/sign-in$/, { timeout: 5_000 });
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  const after = await page.content();
  if (after.includes(name)) {
    throw new Error(`after signing out, the back button shows the instrument ${name} at ${page.url()}`);
  }
  await page.screenshot({ path: join(shots, "after-sign-out.png") });
});


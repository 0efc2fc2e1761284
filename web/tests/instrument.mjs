// The instrument page in a real browser, driven by the black-box suite
// (tests/blackbox, `web.rs`) against a real stack, with a simulated
// freezer relayed by a bridge. In order:
//
//   1. its temperature chart moves without a reload, with the freezer's
//      own setpoint and high-temperature alarm drawn on it;
//   2. a command, confirmed first, goes queued → … → completed;
//   3. a calibration is scheduled and completed with its certificate;
//   4. an edit that someone else overtook (a change made meanwhile with
//      the API) shows what they changed, and is applied over it;
//   5. the freezer is removed, a reason demanded first.
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots
//   EMAIL, PASSWORD         a lab manager
//   OTHER_TOKEN             someone else's token (an admin), for the change made meanwhile
//   INSTRUMENT_ID           the simulated freezer
//   LIVE                    "socket" or "polling" (Spin)
//
// Prints `ok` at the end; any failed check exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, runScript, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const id = env("INSTRUMENT_ID");
const token = env("OTHER_TOKEN");
const polling = env("LIVE") === "polling";
mkdirSync(shots, { recursive: true });

/** The API as someone else, elsewhere, uses it. */
async function api(method, path, body, headers = {}) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const envelope = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(envelope)}`);
  return envelope.data;
}

await runScript({ what: "instrument page", name: "instrument", shots }, async (page) => {
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  const heading = (name) => page.getByRole("heading", { name, exact: true }).waitFor({ timeout: 15_000 });
  await signIn(page, base, env("EMAIL"), env("PASSWORD"));

  // 1. From the dashboard's card to the page; the chart moves.
  await page.locator(`[data-instrument="${id}"] h2 a`).click();
  await heading("Freezer B-12");
  const chart = page.getByRole("img", { name: /^Temperature: latest/ });
  await chart.waitFor({ timeout: 30_000 });
  const caption = async () => (await chart.getAttribute("aria-label")) ?? "";
  // The limits come with the type's schema, which may answer after the first readings.
  const limited = Date.now() + 10_000;
  let first = await caption();
  while (!["setpoint -80 C", "high-temperature alarm -70 C"].every((limit) => first.includes(limit))) {
    if (Date.now() > limited) throw new Error(`the chart does not show the freezer's limits: ${first}`);
    await page.waitForTimeout(100);
    first = await caption();
  }
  const moved = Date.now() + (polling ? 60_000 : 30_000);
  while ((await caption()) === first) {
    if (Date.now() > moved) throw new Error(`the chart did not move: ${first}`);
    await page.waitForTimeout(250);
  }
  await page.locator("canvas").first().waitFor();
  await accessible(page, "instrument");
  await shot("instrument");
  await page.getByRole("button", { name: "Last 24 hours" }).click();
  await page.getByRole("button", { name: "Last 24 hours", pressed: true }).waitFor();
  await page.getByRole("img", { name: /^Temperature: .*in the last 24 hours/ }).waitFor({ timeout: 15_000 });
  await page.getByRole("button", { name: "Last hour" }).click();

  // 2. A command, with its confirmation, to completion.
  await page.locator('#command-name option[value="set_temperature"]:not([disabled])').waitFor({ state: "attached", timeout: 30_000 });
  await page.getByLabel("Command", { exact: true }).selectOption("set_temperature");
  await page.getByLabel("Temperature (°C)", { exact: true }).fill("-78");
  await page.getByRole("button", { name: "Review…" }).click();
  await heading("Send “set_temperature” to Freezer B-12?");
  await accessible(page, "command confirmation");
  await shot("instrument-command-confirm");
  await page.getByRole("button", { name: "Send set_temperature" }).click();
  const sent = page.locator(".command").first();
  await sent.locator("strong", { hasText: "set_temperature" }).waitFor({ timeout: 10_000 });
  await page.locator('.command[data-status="completed"]').first().waitFor({ timeout: 45_000 });
  await sent.locator(".step-done", { hasText: "Completed" }).waitFor();
  await shot("instrument-command-completed");

  // 3. A calibration, scheduled and completed.
  await page.getByRole("button", { name: "Schedule…" }).click();
  const schedule = page.getByRole("dialog", { name: "Schedule maintenance" });
  await schedule.getByLabel("Title (optional)", { exact: true }).fill("Annual probe calibration");
  await schedule.getByRole("button", { name: "Schedule", exact: true }).click();
  await schedule.waitFor({ state: "hidden", timeout: 10_000 });
  await page.getByRole("button", { name: "Complete calibration Annual probe calibration" }).click();
  const complete = page.getByRole("dialog", { name: "Complete the calibration" });
  await complete.getByLabel("Reference standard", { exact: true }).fill("NIST SRM 1750");
  await complete.getByLabel("Certificate number", { exact: true }).fill("CAL-2026-114");
  await accessible(page, "complete calibration");
  await shot("instrument-calibration");
  await complete.getByRole("button", { name: "Mark as completed" }).click();
  await complete.waitFor({ state: "hidden", timeout: 10_000 });
  await page.locator(".facts dd", { hasText: "CAL-2026-114" }).waitFor({ timeout: 10_000 });
  await page.locator("tr", { hasText: "Annual probe calibration" }).getByText("Completed").waitFor();

  // 4. An edit overtaken by someone else's change.
  await page.getByRole("button", { name: "Edit…" }).click();
  const edit = page.getByRole("dialog", { name: "Edit Freezer B-12" });
  await edit.getByLabel("Location (optional)", { exact: true }).fill("Cold room 2");
  await edit.getByLabel("High-temperature alarm (°C)", { exact: true }).fill("-72");
  const now = await api("GET", `/api/v1/instruments/${id}`);
  await api("PUT", `/api/v1/instruments/${id}`, { model: "Thermo TSX" }, { "If-Match": `"${now.version}"` });
  await edit.getByRole("button", { name: "Save changes" }).click();
  const clash = page.getByRole("dialog", { name: "Someone else changed this instrument" });
  await clash.getByRole("row", { name: /Model/ }).getByText("Thermo TSX").waitFor({ timeout: 10_000 });
  await accessible(page, "edit conflict");
  await shot("instrument-edit-conflict");
  await clash.getByRole("button", { name: "Apply my changes over theirs" }).click();
  await clash.waitFor({ state: "hidden", timeout: 10_000 });
  await page.locator(".facts dd", { hasText: "Cold room 2" }).waitFor({ timeout: 10_000 });
  await page.locator(".facts dd", { hasText: "Thermo TSX" }).waitFor();
  const saved = await api("GET", `/api/v1/instruments/${id}`);
  if (saved.configuration.alarmHighC !== -72 || saved.configuration.setpointC !== -80) {
    throw new Error(`the edit lost a setting: ${JSON.stringify(saved.configuration)}`);
  }
  await page.getByRole("img", { name: /high-temperature alarm -72 C/ }).waitFor({ timeout: 10_000 });

  // Tablet width: the same page, still usable.
  await page.setViewportSize({ width: 820, height: 1100 });
  await shot("instrument-tablet");
  await page.setViewportSize({ width: 1280, height: 800 });

  // 5. Removal, with a reason.
  await page.getByRole("button", { name: "Remove…" }).click();
  const remove = page.getByRole("dialog", { name: "Remove Freezer B-12 from service?" });
  await remove.getByRole("button", { name: "Remove", exact: true }).click();
  await remove.locator("#remove-reason-error").waitFor({ timeout: 10_000 });
  await remove.getByLabel("Reason", { exact: true }).fill("Replaced by Freezer B-14");
  await remove.getByRole("button", { name: "Remove", exact: true }).click();
  await remove.waitFor({ state: "hidden", timeout: 10_000 });
  await page.getByText(/^Removed from service on/).waitFor({ timeout: 10_000 });
  if ((await page.getByRole("button", { name: "Edit…" }).count()) > 0) throw new Error("a removed instrument offers Edit");
  await shot("instrument-removed");
});

// The run pages in a real browser, driven by the black-box suite
// (tests/blackbox, `web.rs`) against a real stack with a simulated
// instrument relayed by a bridge: the empty history; a run started here
// that the instrument takes (pending -> running) and finishes (completed,
// when it reports itself idle again); a second run stopped while running
// (aborted, with a reason); and the history's filters.
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots
//   EMAIL, PASSWORD         a lab manager
//   INSTRUMENT_NAME         the simulated instrument
//
// Prints `ok` at the end; any failed check exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, launch, openPage, reportFailure, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const instrument = env("INSTRUMENT_NAME");
mkdirSync(shots, { recursive: true });

const browser = await launch();
let failed = false;
let current;
try {
  const { page, problems } = await openPage(browser);
  current = page;
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  const heading = (name) => page.getByRole("heading", { name, exact: true }).waitFor({ timeout: 15_000 });
  await signIn(page, base, env("EMAIL"), env("PASSWORD"));

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Runs" }).click();
  await heading("Runs");
  await page.getByText("No run has been started yet.").waitFor({ timeout: 10_000 });
  await accessible(page, "runs, empty");

  // Start a run from the history; it opens on the run's page.
  const startRun = async (name, sample) => {
    await page.getByRole("button", { name: "Start a run…" }).click();
    const start = page.getByRole("dialog", { name: "Start a run" });
    await start.locator(`#start-instrument option`, { hasText: `${instrument} (Idle)` })
      .waitFor({ state: "attached", timeout: 30_000 });
    await start.getByLabel("Instrument", { exact: true }).selectOption({ label: `${instrument} (Idle)` });
    await start.getByLabel("Name (optional)", { exact: true }).fill(name);
    if (sample) await start.getByLabel("Sample (optional)", { exact: true }).fill(sample);
    return start;
  };
  const status = (value, timeout = 15_000) => page.locator(`[data-run-status="${value}"]`).waitFor({ timeout });

  // The instrument takes the start (running), then finishes (completed).
  const start = await startRun("Stability check 12", "S-2026-0411");
  await accessible(page, "start a run");
  await shot("run-start");
  await start.getByRole("button", { name: "Start", exact: true }).click();
  await heading("Stability check 12");
  await status("running", 30_000);
  await page.locator(".facts dd", { hasText: "S-2026-0411" }).waitFor();
  await accessible(page, "run, running");
  await shot("run-running");
  // The simulator runs 30 readings of 500 ms.
  await status("completed", 60_000);
  await page.locator(".facts dd", { hasText: "The instrument finished the run" }).waitFor();
  await shot("run-completed");

  // A second run, stopped while running, with a reason.
  await page.getByRole("link", { name: "Runs", exact: true }).first().click();
  await heading("Runs");
  await (await startRun("Stability check 13", "S-2026-0412")).getByRole("button", { name: "Start", exact: true }).click();
  await heading("Stability check 13");
  await status("running", 30_000);
  await page.getByRole("button", { name: "Stop…" }).click();
  const stop = page.getByRole("dialog", { name: "Stop Stability check 13?" });
  await stop.getByLabel("Aborted", { exact: true }).check();
  await stop.getByLabel("Reason", { exact: true }).fill("Wrong plate loaded");
  await stop.getByRole("button", { name: "Stop the run" }).click();
  await stop.waitFor({ state: "hidden", timeout: 10_000 });
  await status("aborted");
  await page.locator(".facts dd", { hasText: "Wrong plate loaded" }).waitFor();
  await shot("run-stopped");

  // The history, with its filters.
  await page.getByRole("link", { name: "Runs", exact: true }).first().click();
  await heading("Runs");
  const completed = page.locator("tr", { hasText: "Stability check 12" });
  const aborted = page.locator("tr", { hasText: "Stability check 13" });
  await completed.getByText("Completed").waitFor({ timeout: 10_000 });
  await aborted.getByText("Aborted").waitFor({ timeout: 10_000 });
  await accessible(page, "runs");
  await shot("runs");
  await page.getByLabel("Status", { exact: true }).selectOption("failed");
  await page.getByText("No run matches these filters.").waitFor({ timeout: 10_000 });
  if (!page.url().includes("status=failed")) throw new Error(`the filter is not in the address: ${page.url()}`);
  await page.getByLabel("Status", { exact: true }).selectOption("completed");
  await completed.waitFor({ timeout: 10_000 });
  await aborted.waitFor({ state: "detached", timeout: 10_000 });
  await page.getByRole("button", { name: "Clear filters" }).click();
  await aborted.waitFor({ timeout: 10_000 });
  await page.getByLabel("Operator", { exact: true }).selectOption({ label: "Me" });
  await aborted.waitFor({ timeout: 10_000 });
  await completed.waitFor({ timeout: 10_000 });

  // Tablet width.
  await page.setViewportSize({ width: 820, height: 1100 });
  await shot("runs-tablet");

  if (problems.length > 0) throw new Error(problems.join("\n"));
  console.log("ok");
} catch (error) {
  failed = true;
  console.error(`run pages failed: ${error instanceof Error ? error.stack : error}`);
  await reportFailure(current, shots, "runs");
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

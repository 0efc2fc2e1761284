// What the web application costs a person, measured in Chromium by the
// benchmark (`cargo xtask bench`, `ANTEVUS_BENCH_ONLY=web`) against a real
// stack: the run history's time to interactive with 10,000 runs (a fresh
// page load until the first page of the table is there, and the next
// page), an instrument's week of readings (from choosing "Last 7 days"
// until its chart shows them), and a 100 MB data file uploaded through
// the page (chunked into object storage).
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots and the file
//   EMAIL, PASSWORD         an administrator
//   INSTRUMENT_ID           an instrument with a week of readings
//   RUN_ID                  an ended run without a data file
//   UPLOAD_MB               the file's size in MB (1,000,000 bytes)
//
// Prints `timing <name> <ms>` lines and `ok`.
import { mkdirSync, openSync, writeSync, closeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { env, runScript, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const megabytes = Number(env("UPLOAD_MB"));
mkdirSync(shots, { recursive: true });

await runScript({ what: "measure", name: "measure", shots, strict: false }, async (page) => {
  await signIn(page, base, env("EMAIL"), env("PASSWORD"));

  // The run history, loaded afresh (the app restores the session from its cookie).
  let started = performance.now();
  await page.goto(`${base}/runs`);
  await page.locator("table.runs tbody tr").nth(24).waitFor({ timeout: 60_000 });
  await page.locator("table.runs tbody tr a").first().waitFor({ state: "visible" });
  console.log(`timing runs-history-ms ${Math.round(performance.now() - started)}`);
  const first = await page.locator("table.runs tbody tr").first().getAttribute("data-run");
  started = performance.now();
  await page.getByRole("button", { name: "Older" }).click();
  await page.locator(`table.runs tbody tr[data-run="${first}"]`).waitFor({ state: "detached", timeout: 60_000 });
  await page.locator("table.runs[aria-busy=false]").waitFor({ timeout: 60_000 });
  console.log(`timing runs-next-page-ms ${Math.round(performance.now() - started)}`);
  await page.screenshot({ path: join(shots, "measure-runs.png") });

  // An instrument's week of readings.
  started = performance.now();
  await page.goto(`${base}/instruments/${env("INSTRUMENT_ID")}`);
  const chart = page.getByRole("img", { name: /^Temperature: latest/ });
  await chart.waitFor({ timeout: 60_000 });
  console.log(`timing instrument-page-ms ${Math.round(performance.now() - started)}`);
  started = performance.now();
  await page.getByRole("button", { name: "Last 7 days" }).click();
  await page.getByRole("img", { name: /^Temperature: latest .* in the last 7 days/ }).waitFor({ timeout: 60_000 });
  await page.locator("canvas").first().waitFor();
  console.log(`timing instrument-week-ms ${Math.round(performance.now() - started)}`);
  await page.screenshot({ path: join(shots, "measure-week.png") });

  // A large data file through the page.
  const file = join(shots, "measure-upload.bin");
  const out = openSync(file, "w");
  for (let i = 0; i < megabytes; i++) writeSync(out, randomBytes(1_000_000));
  closeSync(out);
  await page.goto(`${base}/runs/${env("RUN_ID")}`);
  await page.getByLabel("File", { exact: true }).setInputFiles(file);
  started = performance.now();
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.getByText(/^measure-upload\.bin is recorded/).waitFor({ timeout: 600_000 });
  const ms = performance.now() - started;
  console.log(`timing upload-ms ${Math.round(ms)}`);
  console.log(`timing upload-mb-per-s ${(megabytes / (ms / 1000)).toFixed(1)}`);
  await page.screenshot({ path: join(shots, "measure-upload.png") });
});

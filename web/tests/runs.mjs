// The run pages in a real browser, driven by the black-box suite
// (tests/blackbox, `web.rs`) against a real stack with a simulated
// instrument relayed by a bridge: the empty history; a run started here
// that the instrument takes (pending -> running) and finishes (completed,
// when it reports itself idle again); a second run stopped while running
// (aborted, with a reason); the finished run's data file uploaded in
// chunks with a progress bar, interrupted on purpose and resumed, then
// downloaded with its digest compared here; the run signed with the
// e-mail and password again (a wrong password refused first); and the
// history's filters.
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots
//   EMAIL, PASSWORD         a lab manager
//   INSTRUMENT_NAME         the simulated instrument
//
// Prints `ok` at the end; any failed check exits non-zero with what it saw.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, runScript, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const instrument = env("INSTRUMENT_NAME");
mkdirSync(shots, { recursive: true });

await runScript({ what: "run pages", name: "runs", shots }, async (page) => {
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

  // Its data file: 12 MB, which this stack keeps in object storage. The
  // page's first chunk (2 MiB, what every backend takes) is refused with
  // the sizes that do (5 MiB here), then the file goes in three; the
  // second one's connection drops once, on purpose, and the upload
  // resumes where the server says it stands.
  const file = join(shots, "plate-read-0411.bin");
  const content = randomBytes(12_000_000);
  writeFileSync(file, content);
  const digest = createHash("sha256").update(content).digest("hex");
  const sent = [];
  await page.route("**/api/v1/runs/*/data?*", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    sent.push(route.request().headers()["content-range"]);
    if (sent.length === 3) return route.abort("connectionreset");
    return route.continue();
  });
  await page.getByLabel("File", { exact: true }).setInputFiles(file);
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.getByText(/^The upload stopped at 5\.2 MB\.$/).waitFor({ timeout: 30_000 });
  const progress = page.getByRole("progressbar", { name: "Upload progress" });
  if (Number(await progress.getAttribute("value")) !== 5 << 20) throw new Error(`the bar is not at the interruption: ${await progress.getAttribute("value")}`);
  await accessible(page, "upload interrupted");
  await shot("run-upload-interrupted");
  await page.getByRole("button", { name: "Resume upload" }).click();
  await page.getByText(/^plate-read-0411\.bin is recorded \(12\.0 MB in/).waitFor({ timeout: 60_000 });
  await page.unroute("**/api/v1/runs/*/data?*");
  const expected = [
    "bytes 0-2097151/12000000", // refused: too small for object storage
    "bytes 0-5242879/12000000",
    "bytes 5242880-10485759/12000000", // dropped
    "bytes 5242880-10485759/12000000",
    "bytes 10485760-11999999/12000000",
  ];
  if (sent.join() !== expected.join()) throw new Error(`the chunks sent: ${sent.join(" | ")}`);
  await page.locator(`[data-sha256="${digest}"]`).waitFor({ timeout: 10_000 });
  await shot("run-data");

  // Downloaded, its digest compared in the page and here.
  const saved = page.waitForEvent("download", { timeout: 30_000 });
  await page.getByRole("button", { name: "Download plate-read-0411.bin" }).click();
  const downloaded = join(shots, "downloaded-0411.bin");
  await (await saved).saveAs(downloaded);
  await page.locator(`[data-download-digest="match"]`).waitFor({ timeout: 30_000 });
  if (createHash("sha256").update(readFileSync(downloaded)).digest("hex") !== digest) throw new Error("the downloaded file differs");

  // Signed with the e-mail and password again; a wrong password first.
  await page.getByRole("button", { name: "Sign…" }).click();
  const sign = page.getByRole("dialog", { name: "Sign Stability check 12" });
  await sign.getByLabel(/^Review/).check();
  await sign.getByLabel("Comment (optional)", { exact: true }).fill("Data complete, QC reviewed");
  await sign.getByLabel("E-mail", { exact: true }).fill(env("EMAIL"));
  await sign.getByLabel("Password", { exact: true }).fill("not my password");
  await sign.getByRole("button", { name: "Sign", exact: true }).click();
  await sign.getByText("Not signed: the e-mail, password or code is not right").waitFor({ timeout: 10_000 });
  await accessible(page, "sign refused");
  await shot("run-sign-refused");
  await sign.getByLabel("Password", { exact: true }).fill(env("PASSWORD"));
  await sign.getByRole("button", { name: "Sign", exact: true }).click();
  await sign.waitFor({ state: "hidden", timeout: 10_000 });
  const signature = page.locator(`[data-signature="review"]`);
  await signature.getByText("Valid", { exact: true }).waitFor({ timeout: 10_000 });
  await signature.getByText("“Data complete, QC reviewed”").waitFor();
  await accessible(page, "run signed");
  await shot("run-signed");

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
});

// The audit trail in a real browser, driven by the black-box suite
// (tests/blackbox, `web.rs`) against a real stack whose organization has a
// history (an instrument registered, a role changed with a reason, a run
// started, stopped and signed). A QA officer: reads the trail with the
// names of those who acted; finds the run's actions, all of them from its
// signature's record; filters it by event type (kept in the address) and
// by record; opens an event in
// full (what changed, the reason, the request, its place on the chain);
// verifies the chain; exports JSON Lines and CSV, each checked against its
// manifest here and saved for the suite to check offline.
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots (and the exports)
//   EMAIL, PASSWORD         a QA officer
//   ACTOR_NAME              who made the history
//
// Prints `exported <format> <file> [<manifest file>]` for each export and
// `ok` at the end; any failed check exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, runScript, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const actor = env("ACTOR_NAME");
mkdirSync(shots, { recursive: true });

await runScript({ what: "audit pages", name: "audit", shots }, async (page) => {
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const heading = (name) => page.getByRole("heading", { name, exact: true }).waitFor({ timeout: 15_000 });
  await signIn(page, base, env("EMAIL"), env("PASSWORD"));

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await heading("Audit trail");
  const updated = page.locator(`tr[data-event="USER_UPDATED"]`);
  await updated.first().waitFor({ timeout: 15_000 });
  await updated.first().getByText(actor).waitFor();
  await page.locator(`tr[data-event="INSTRUMENT_CREATED"]`).first().waitFor();
  await accessible(page, "audit trail");
  await shot("audit");

  // The run's actions, from its signature: every event about the run.
  const signed = page.locator(`tr[data-event="ESIGNATURE_APPLIED"]`);
  await signed.getByText("Run electronically signed").waitFor();
  await signed.getByRole("button", { name: "Its events: only those about this run" }).click();
  // The list keeps the last answer on screen until the filtered one comes.
  await page.locator(`tr[data-event="INSTRUMENT_CREATED"]`).first().waitFor({ state: "detached", timeout: 10_000 });
  await page.locator(`tr[data-event="RUN_STOPPED"]`).getByText("Reason: Plate dropped").waitFor({ timeout: 10_000 });
  await page.locator(`tr[data-event="RUN_STARTED"]`).waitFor();
  const about = await page.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-event")));
  if (about.join() !== "ESIGNATURE_APPLIED,RUN_STOPPED,RUN_STARTED") throw new Error(`the run's events: ${about.join()}`);
  await shot("audit-run");
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.locator(`tr[data-event="INSTRUMENT_CREATED"]`).first().waitFor({ timeout: 10_000 });

  // By event type, in the address.
  await page.getByLabel("Event type", { exact: true }).fill("user_updated");
  await page.locator(`tr[data-event="INSTRUMENT_CREATED"]`).first().waitFor({ state: "detached", timeout: 10_000 });
  if (!page.url().includes("eventType=USER_UPDATED")) throw new Error(`the filter is not in the address: ${page.url()}`);
  if ((await page.locator("tbody tr").count()) !== (await updated.count())) throw new Error("the filter let other events through");

  // One event in full.
  await updated.first().getByRole("button", { name: /^Details of event \d+, USER_UPDATED$/ }).click();
  const detail = page.getByRole("dialog", { name: /^Event #\d+: USER_UPDATED$/ });
  await detail.getByRole("heading", { name: "What changed" }).waitFor();
  const role = detail.locator("tr", { hasText: "role" });
  await role.locator(".before", { hasText: "SCIENTIST" }).waitFor();
  await role.locator(".after", { hasText: "SENIOR_SCIENTIST" }).waitFor();
  await detail.getByText("Leads the stability programme from January").waitFor();
  await detail.getByRole("heading", { name: "On the chain" }).waitFor();
  const requestId = await detail.locator("dt", { hasText: "Request id" }).locator("xpath=following-sibling::dd[1]").innerText();
  if (!requestId.trim() || requestId.includes("none")) throw new Error(`no request id: ${requestId}`);
  await accessible(page, "audit event");
  await shot("audit-event");
  await detail.getByRole("button", { name: "Close" }).click();
  await detail.waitFor({ state: "hidden" });

  // The user's record: every event about them.
  await updated.first().getByRole("button", { name: "Its events: only those about this user" }).click();
  await page.getByText("any record").waitFor();
  if (!/recordId=[0-9a-f-]{36}/.test(page.url())) throw new Error(`no record filter: ${page.url()}`);
  await page.getByRole("button", { name: "Clear filters" }).click();
  await page.locator(`tr[data-event="INSTRUMENT_CREATED"]`).first().waitFor({ timeout: 10_000 });

  // The chain, verified.
  await page.getByRole("button", { name: "Verify the chain" }).click();
  await page.locator(`[data-verdict="good"]`).waitFor({ timeout: 30_000 });
  await page.getByText(/^The audit trail is intact: all \d+ events from #1 to #\d+ verify\.$/).waitFor();
  await shot("audit-verified");

  // Exports, checked here against their manifests and saved.
  const exportAs = async (format, label) => {
    await page.getByLabel("Format", { exact: true }).selectOption({ label });
    const download = page.waitForEvent("download", { timeout: 30_000 });
    await page.getByRole("button", { name: "Export every event" }).click();
    const file = join(shots, `audit-export.${format}`);
    await (await download).saveAs(file);
    await page.locator(`[data-digest="match"]`).waitFor({ timeout: 30_000 });
    await page.getByText("The file's SHA-256 matches its manifest.").waitFor();
    const line = await page.getByLabel("Check it offline", { exact: true }).inputValue();
    if (!line.startsWith("antevus-audit verify-export --file ")) throw new Error(`no offline check: ${line}`);
    return file;
  };
  const jsonl = await exportAs("jsonl", "JSON Lines (every event, streamed)");
  await accessible(page, "audit exported");
  await shot("audit-exported");
  console.log(`exported jsonl ${jsonl}`);
  const csv = await exportAs("csv", "CSV (up to 20,000 events)");
  const saved = page.waitForEvent("download");
  await page.getByRole("link", { name: "Save the manifest" }).click();
  const manifest = join(shots, "audit-export.csv.manifest");
  await (await saved).saveAs(manifest);
  console.log(`exported csv ${csv} ${manifest}`);

  // Tablet width.
  await page.setViewportSize({ width: 820, height: 1100 });
  await shot("audit-tablet");
});

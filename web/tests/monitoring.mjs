// The monitoring page in a real browser, driven by the black-box suite
// (tests/blackbox, `web.rs`) against a real stack whose bridge relays a
// simulated freezer and incubator (and a centrifuge no bridge serves): a
// technician sees the system's health and the bridge's, puts the two
// instruments' charts side by side and watches both move (pushed, or
// polled on Spin), and takes one away again.
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots
//   EMAIL, PASSWORD         a technician
//   LIVE                    "socket" or "polling"
//
// Prints `ok` at the end; any failed check exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, runScript, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const polling = env("LIVE") === "polling";
mkdirSync(shots, { recursive: true });

await runScript({ what: "monitoring", name: "monitoring", shots }, async (page) => {
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  await signIn(page, base, env("EMAIL"), env("PASSWORD"));

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Monitoring" }).click();
  await page.getByRole("heading", { name: "Monitoring", exact: true }).waitFor({ timeout: 15_000 });
  await page.locator(`[data-health="ok"]`).waitFor({ timeout: 15_000 });
  await page.getByText("Reachable", { exact: true }).waitFor();
  const bridge = page.locator(`tr[data-bridge="Bench bridge"]`);
  await bridge.getByText("Online", { exact: true }).waitFor({ timeout: 30_000 });
  await bridge.getByRole("link", { name: "Freezer B-12" }).waitFor({ timeout: 30_000 });

  // Two instruments side by side, chosen from none.
  await page.goto(`${base}/monitoring?show=`);
  await page.getByRole("heading", { name: "Monitoring", exact: true }).waitFor({ timeout: 15_000 });
  await page.getByText("Choose instruments to chart.").waitFor({ timeout: 15_000 });
  for (const name of ["Freezer B-12", "Incubator I-4"]) {
    await page.getByRole("checkbox", { name: new RegExp(`^${name}`) }).check();
  }
  if (!/show=[0-9a-f-]{36}%2C[0-9a-f-]{36}|show=[0-9a-f-]{36},[0-9a-f-]{36}/.test(page.url())) {
    throw new Error(`the choice is not in the address: ${page.url()}`);
  }
  const moving = async (name, metric) => {
    const chart = page.locator(`[data-monitor="${name}"]`).getByRole("img", { name: new RegExp(`^${metric}: latest`) });
    await chart.waitFor({ timeout: 30_000 });
    const first = await chart.getAttribute("aria-label");
    const until = Date.now() + (polling ? 60_000 : 30_000);
    while ((await chart.getAttribute("aria-label")) === first) {
      if (Date.now() > until) throw new Error(`${name}'s chart did not move: ${first}`);
      await page.waitForTimeout(250);
    }
    return first;
  };
  const freezer = await moving("Freezer B-12", "Temperature");
  if (!freezer.includes("setpoint -80 C")) throw new Error(`the freezer's limits are not drawn: ${freezer}`);
  await page.getByLabel("Metric of Incubator I-4", { exact: true }).selectOption({ label: "Temperature" });
  await moving("Incubator I-4", "Temperature");
  if ((await page.locator(".monitor").count()) !== 2) throw new Error("not two charts");
  await accessible(page, "monitoring");
  await shot("monitoring");

  // One taken away.
  await page.getByRole("checkbox", { name: /^Incubator I-4/ }).uncheck();
  await page.locator(`[data-monitor="Incubator I-4"]`).waitFor({ state: "detached", timeout: 10_000 });

  await page.setViewportSize({ width: 820, height: 1100 });
  await shot("monitoring-tablet");
});

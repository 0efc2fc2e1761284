// The administration pages in a real browser, driven by the black-box
// suite (tests/blackbox, `web.rs`) against a real stack. An administrator:
// invites a viewer and revokes the invitation; changes a scientist's role
// (refused without a reason, then with one); makes an API key (shown once),
// uses it, and revokes it; makes a join token, has the suite run its
// enroll command as a lab computer would, sees the bridge's health, and
// takes the bridge out of service; revokes a second, unused token; and
// makes a request from the API playground (and reads its curl).
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots
//   EMAIL, PASSWORD         an administrator
//   OTHER_EMAIL             a scientist of the organization
//   INVITE_EMAIL            an address with no account
//
// Prints `ok` at the end; any failed check exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, ask, env, runScript, signIn } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const other = env("OTHER_EMAIL");
const invited = env("INVITE_EMAIL");
mkdirSync(shots, { recursive: true });

/** The status of a request made with an API key, outside the browser. */
async function withKey(key, path, init = {}) {
  const response = await fetch(base + path, { ...init, headers: { "X-API-Key": key, "Content-Type": "application/json" } });
  return response.status;
}

await runScript({ what: "administration", name: "admin", shots }, async (page) => {
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const heading = (name) => page.getByRole("heading", { name, exact: true }).waitFor({ timeout: 15_000 });
  const dialog = (name) => page.getByRole("dialog", { name });
  const closed = (d) => d.waitFor({ state: "hidden", timeout: 10_000 });
  await signIn(page, base, env("EMAIL"), env("PASSWORD"));

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Administration" }).click();
  await heading("Administration");
  await heading("Users");
  await page.getByText("No invitation has been sent.").waitFor({ timeout: 10_000 });
  await accessible(page, "users");

  // An invitation, then revoked.
  await page.getByRole("button", { name: "Invite someone…" }).click();
  const invite = dialog("Invite someone");
  await invite.getByLabel("E-mail", { exact: true }).fill("not-an-address");
  await invite.getByRole("button", { name: "Send invitation" }).click();
  await invite.locator(".field-error").waitFor({ timeout: 10_000 });
  await invite.getByLabel("E-mail", { exact: true }).fill(invited);
  await invite.getByLabel("Role", { exact: true }).selectOption({ label: "Viewer" });
  await invite.getByLabel("Name (optional)", { exact: true }).fill("Vera");
  await accessible(page, "invite");
  await invite.getByRole("button", { name: "Send invitation" }).click();
  await closed(invite);
  await page.getByText(`The invitation is mailed to ${invited}`).waitFor();
  const invitation = page.locator(`tr[data-invitation="${invited}"]`);
  await invitation.getByText("Pending").waitFor({ timeout: 10_000 });
  await shot("admin-users");
  await invitation.getByRole("button", { name: `Revoke the invitation to ${invited}` }).click();
  const revokeInvitation = dialog("Revoke the invitation");
  await revokeInvitation.getByRole("button", { name: "Revoke invitation" }).click();
  await closed(revokeInvitation);
  await invitation.getByText("Revoked", { exact: true }).waitFor({ timeout: 10_000 });
  if (await invitation.getByRole("button").count()) throw new Error("a revoked invitation still offers an action");

  // A role change needs a reason.
  const scientist = page.locator(`tr[data-user="${other}"]`);
  await scientist.getByText("Scientist", { exact: true }).waitFor();
  await scientist.getByRole("button", { name: /role$/ }).click();
  const role = dialog("Change Sam Rivera's role");
  await role.getByLabel("New role", { exact: true }).selectOption({ label: "Senior scientist" });
  await role.getByRole("button", { name: "Change role" }).click();
  await role.getByText("Changing a role needs a reason").waitFor({ timeout: 10_000 });
  await accessible(page, "role change refused");
  await shot("admin-role-reason");
  await role.getByLabel("Reason", { exact: true }).fill("Leads the stability programme from January");
  await role.getByRole("button", { name: "Change role" }).click();
  await closed(role);
  await page.getByText("Sam Rivera is now Senior scientist.").waitFor();
  await scientist.getByText("Senior scientist", { exact: true }).waitFor({ timeout: 10_000 });
  // One's own row offers nothing to change.
  const self = page.locator("tr", { hasText: "(you)" });
  if (await self.getByRole("button").count()) throw new Error("the administrator may act on themselves");

  // An API key, shown once, used, revoked.
  await page.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "API keys" }).click();
  await heading("API keys");
  await page.getByText("No API key yet.").waitFor({ timeout: 10_000 });
  await accessible(page, "api keys, empty");
  await page.getByRole("button", { name: "Create an API key…" }).click();
  const create = dialog("Create an API key");
  await create.getByLabel("Name", { exact: true }).fill("LIMS nightly export");
  await create.getByLabel("Allowed from (optional)", { exact: true }).fill("lab-network");
  await create.getByRole("button", { name: "Create key" }).click();
  await create.getByText("lab-network is not an address or CIDR block").waitFor({ timeout: 10_000 });
  await create.getByLabel("Allowed from (optional)", { exact: true }).fill("");
  await create.getByLabel(/^runs:view/).uncheck();
  await accessible(page, "create a key");
  await shot("admin-key-create");
  await create.getByRole("button", { name: "Create key" }).click();
  await closed(create);
  const shown = page.getByLabel("API key", { exact: true });
  const key = await shown.inputValue();
  if (!/^ak_[0-9a-f]{12}_/.test(key)) throw new Error(`not a key: ${key}`);
  await page.getByText("it is shown only this once").waitFor();
  await shot("admin-key-shown");
  const row = page.locator(`tr[data-key="LIMS nightly export"]`);
  await row.getByText("instruments:view").waitFor();
  if (await row.getByText("runs:view").count()) throw new Error("an unchecked scope was granted");
  let status = await withKey(key, "/api/v1/instruments");
  if (status !== 200) throw new Error(`the new key was refused: ${status}`);
  status = await withKey(key, "/api/v1/runs");
  if (status !== 403) throw new Error(`the key used a scope it lacks: ${status}`);
  await page.getByRole("button", { name: "I have stored it" }).click();
  if (await page.getByLabel("API key", { exact: true }).count()) throw new Error("the key is still shown");
  await page.reload();
  await row.getByText("2 requests").waitFor({ timeout: 10_000 });
  await row.getByRole("button", { name: "Revoke the key LIMS nightly export" }).click();
  const revokeKey = dialog("Revoke the key LIMS nightly export");
  await revokeKey.getByRole("button", { name: "Revoke key" }).click();
  await closed(revokeKey);
  await row.getByText("Revoked", { exact: true }).waitFor({ timeout: 10_000 });
  status = await withKey(key, "/api/v1/instruments");
  if (status !== 401) throw new Error(`a revoked key was accepted: ${status}`);
  await accessible(page, "api keys");
  await shot("admin-keys");

  // A join token, its enroll command run on a "lab computer", the bridge's
  // health, and the bridge taken out of service.
  await page.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Bridges" }).click();
  await heading("Bridges");
  await page.getByText("No bridge is enrolled.").waitFor({ timeout: 10_000 });
  await accessible(page, "bridges, empty");
  const makeToken = async (name) => {
    await page.getByRole("button", { name: "Make a join token…" }).click();
    const make = dialog("Make a join token");
    await make.getByLabel("Bridge name", { exact: true }).fill(name);
    await make.getByLabel("Works for", { exact: true }).selectOption({ label: "8 hours" });
    await make.getByRole("button", { name: "Make token" }).click();
    await closed(make);
    return page.getByLabel("Enroll command", { exact: true }).inputValue();
  };
  const command = await makeToken("Lab 2 bench PC");
  if (!command.includes(`--url ${base}`)) throw new Error(`the enroll command misses the origin: ${command}`);
  await shot("admin-token-made");
  const enrolled = await ask("enroll", command);
  await page.getByRole("button", { name: "Done", exact: true }).click();
  const bridge = page.locator(`tr[data-bridge="Lab 2 bench PC"]`);
  await bridge.getByText("Online", { exact: true }).waitFor({ timeout: 20_000 });
  await bridge.getByText("12 waiting").waitFor();
  await bridge.getByText("lab-2-bench").waitFor();
  await bridge.getByRole("link", { name: "Incubator I-7" }).waitFor();
  await page.locator(`tr[data-token="Lab 2 bench PC"]`).getByText("Used", { exact: true }).waitFor();
  await makeToken("Spare bench PC");
  await page.getByRole("button", { name: "Done", exact: true }).click();
  const spare = page.locator(`tr[data-token="Spare bench PC"]`);
  await spare.getByRole("button", { name: "Revoke the join token Spare bench PC" }).click();
  const revokeToken = dialog("Revoke the join token");
  await revokeToken.getByRole("button", { name: "Revoke token" }).click();
  await closed(revokeToken);
  await spare.getByText("Revoked", { exact: true }).waitFor({ timeout: 10_000 });
  await accessible(page, "bridges");
  await shot("admin-bridges");
  await bridge.getByRole("button", { name: "Revoke Lab 2 bench PC: take it out of service" }).click();
  const retire = dialog("Take Lab 2 bench PC out of service");
  await retire.getByRole("button", { name: "Revoke its key" }).click();
  await closed(retire);
  await bridge.waitFor({ state: "detached", timeout: 10_000 });
  status = await withKey(enrolled.apiKey, "/api/v1/bridges/ingest", {
    method: "POST",
    body: JSON.stringify({ stream: crypto.randomUUID(), records: [], heartbeat: { queueDepth: 0 } }),
  });
  if (status !== 401) throw new Error(`a revoked bridge was accepted: ${status}`);

  // The API playground: a request with the session, its curl, a refusal.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API" }).click();
  await page.getByRole("heading", { name: "API playground", exact: true }).waitFor({ timeout: 15_000 });
  await page.getByLabel("Find an operation", { exact: true }).fill("instruments");
  const operations = page.getByRole("navigation", { name: "Operations" });
  await operations.getByRole("button", { name: "GET /api/v1/instruments", exact: true }).click();
  await page.getByRole("heading", { name: "GET /api/v1/instruments", exact: true }).waitFor();
  if (!page.url().includes("op=getInstruments")) throw new Error(`the operation is not in the address: ${page.url()}`);
  await page.getByLabel("limit (optional)", { exact: true }).fill("5");
  const asCurl = await page.getByLabel("The same request with curl", { exact: true }).inputValue();
  if (asCurl !== `curl -sS '${base}/api/v1/instruments?limit=5' -H "Authorization: Bearer $ANTEVUS_TOKEN"`) {
    throw new Error(`not the request's curl: ${asCurl}`);
  }
  await page.getByRole("button", { name: "Send GET" }).click();
  const answer = page.locator(`[data-answer-status="200"]`);
  await answer.waitFor({ timeout: 15_000 });
  await answer.getByText('"name": "Incubator I-7"').waitFor();
  await answer.getByText("x-request-id").waitFor();
  await accessible(page, "playground");
  await shot("playground");
  await operations.getByRole("button", { name: "GET /api/v1/instruments/{id}", exact: true }).click();
  await page.getByLabel("id", { exact: true }).fill("not-an-id");
  await page.getByRole("button", { name: "Send GET" }).click();
  await page.locator(`[data-answer-status="404"]`).getByText('"code": "RESOURCE_NOT_FOUND"').waitFor({ timeout: 15_000 });

  // Tablet width.
  await page.setViewportSize({ width: 820, height: 1100 });
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Administration" }).click();
  await heading("Users");
  await shot("admin-users-tablet");
});

// The account paths in a real browser, driven by the black-box suite
// (tests/blackbox, `web.rs`) against a real stack; the mailed links are
// read from the outbox by the suite (`mailTo`). In order:
//
//   1. a viewer accepts an invitation (a weak password refused at its
//      field first), lands on the dashboard, is offered no admin action,
//      and a direct link to one says it is not permitted;
//   2. the viewer sets up an authenticator from the profile (QR code,
//      first code, recovery codes) and signs out;
//   3. the viewer forgets the password, resets it from the mailed link and
//      signs in with the new one and a recovery code;
//   4. someone opens a new organization: the confirmation link mailed to
//      them creates it, and they land on its empty dashboard.
//
//   BASE_URL, SCREENSHOTS   the host; a folder for the screenshots
//   INVITE_LINK             the invitation's link (path and query)
//   INVITED_EMAIL           the address it was sent to
//   NEW_ORG_EMAIL           an address with no account, to open an organization with
//
// Prints `ok` at the end; any failed check exits non-zero with what it saw.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { accessible, env, linkIn, mailTo, runScript, totp } from "./browser.mjs";

const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const invited = env("INVITED_EMAIL");
const founder = env("NEW_ORG_EMAIL");
mkdirSync(shots, { recursive: true });

await runScript({ what: "browser account paths", name: "accounts", shots }, async (page) => {
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
  // A part of a long page, scrolled into view (a full-page shot would
  // paint the sticky header in the middle).
  const shotOf = async (name, selector) => {
    await page.locator(selector).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, `${name}.png`) });
  };
  const heading = (name) => page.getByRole("heading", { name, exact: true }).waitFor({ timeout: 15_000 });

  // 1. The invitation.
  await page.goto(base + env("INVITE_LINK"));
  await heading("Join your laboratory");
  await page.getByLabel("Your name", { exact: true }).fill("Vera Viewer");
  await page.getByLabel("Password", { exact: true }).fill("password1");
  await page.getByRole("button", { name: "Create my account" }).click();
  await page.locator("#password-error").waitFor({ timeout: 10_000 });
  await accessible(page, "accept invitation");
  await shot("accept-invitation");
  const firstPassword = "Vera's freezer log 2026";
  await page.getByLabel("Password", { exact: true }).fill(firstPassword);
  await page.getByRole("button", { name: "Create my account" }).click();
  await heading("Instruments");
  await page.locator("header a[href='/profile']", { hasText: "Vera Viewer" }).waitFor({ timeout: 10_000 });
  await page.locator(".card, .empty").first().waitFor({ timeout: 10_000 });
  if ((await page.getByRole("button", { name: "Add instrument" }).count()) > 0) {
    throw new Error("a viewer is offered “Add instrument”");
  }
  await shot("viewer-dashboard");
  // A direct link, in a fresh load (the session comes back from the cookie).
  await page.goto(base + "/instruments/new");
  await heading("Not permitted");
  await page.getByText("Viewer").first().waitFor();
  await accessible(page, "not permitted");
  await shot("not-permitted");

  // 2. A second factor from the profile.
  await page.locator("header a[href='/profile']").click();
  await heading("Second factor");
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  await page.locator("#mfa-password").fill(firstPassword);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("img", { name: "QR code of your new authenticator key" }).waitFor({ timeout: 10_000 });
  const key = ((await page.locator("code.secret").textContent()) ?? "").replace(/\s/g, "");
  await accessible(page, "second factor");
  await shotOf("second-factor-key", "section[aria-labelledby='mfa-title']");
  await page.getByLabel("The 6-digit code the app shows", { exact: true }).fill(totp(key));
  await page.getByRole("button", { name: "Turn on" }).click();
  const codes = page.getByRole("list", { name: "Recovery codes" }).locator("code");
  await codes.first().waitFor({ timeout: 10_000 });
  if ((await codes.count()) !== 10) throw new Error(`${await codes.count()} recovery codes shown, not 10`);
  const recovery = (await codes.first().textContent()) ?? "";
  await shotOf("recovery-codes", "section[aria-labelledby='mfa-title']");
  await page.getByRole("button", { name: "I have stored them" }).click();
  await page.getByText("An authenticator app is set up; 10 recovery codes left.").waitFor({ timeout: 10_000 });
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading("Sign in");

  // 3. A forgotten password, reset by the mailed link.
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await heading("Reset your password");
  await page.getByLabel("E-mail", { exact: true }).fill(invited);
  await page.getByRole("button", { name: "Send the link" }).click();
  await heading("Check your e-mail");
  await accessible(page, "forgot password");
  await shot("forgot-password-sent");
  const reset = await mailTo(invited);
  await page.goto(base + linkIn(reset.text, "/reset-password"));
  await heading("Choose a new password");
  const newPassword = "Vera's new freezer log 2026";
  await page.getByLabel("New password", { exact: true }).fill(newPassword);
  await page.getByRole("button", { name: "Set the new password" }).click();
  await heading("Sign in");
  await page.getByText("Your password is changed").waitFor();
  await shot("password-reset");
  await page.getByLabel("E-mail", { exact: true }).fill(invited);
  await page.getByLabel("Password", { exact: true }).fill(firstPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").getByText("The e-mail or password is not right").waitFor({ timeout: 10_000 });
  await page.getByLabel("Password", { exact: true }).fill(newPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await heading("Second factor");
  await page.getByLabel("Code", { exact: true }).fill(recovery);
  await page.getByRole("button", { name: "Continue" }).click();
  await heading("Instruments");
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading("Sign in");

  // 4. A new organization, confirmed by the mailed link.
  await page.getByRole("link", { name: "Open a new organization" }).click();
  await heading("Open a new organization");
  await page.getByLabel("Laboratory or organization", { exact: true }).fill("Harbour Street Biobank");
  await page.getByLabel("Your name", { exact: true }).fill("Femi Founder");
  await page.getByLabel("Work e-mail", { exact: true }).fill(founder);
  const founderPassword = "Harbour Street samples 2026";
  await page.getByLabel("Password", { exact: true }).fill(founderPassword);
  await accessible(page, "sign up");
  await shot("sign-up");
  await page.getByRole("button", { name: "Continue" }).click();
  await heading("Check your e-mail");
  const confirmation = await mailTo(founder);
  await page.goto(base + linkIn(confirmation.text, "/signup/confirm"));
  await heading("Confirm your organization");
  await page.getByLabel("Password", { exact: true }).fill(founderPassword);
  await page.getByRole("button", { name: "Create the organization" }).click();
  await heading("Instruments");
  await page.locator("header a[href='/profile']", { hasText: "Harbour Street Biobank" }).waitFor({ timeout: 10_000 });
  await page.getByText("No instruments yet").waitFor({ timeout: 10_000 });
  await page.getByRole("button", { name: "Add instrument" }).waitFor();
  await accessible(page, "new organization");
  await shot("new-organization");
  // The confirmation link is spent.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading("Sign in");
  await page.goto(base + linkIn(confirmation.text, "/signup/confirm"));
  await page.getByLabel("Password", { exact: true }).fill(founderPassword);
  await page.getByRole("button", { name: "Create the organization" }).click();
  await page.getByRole("alert").getByText("This link is not valid").waitFor({ timeout: 10_000 });
  await shot("spent-confirmation-link");
});

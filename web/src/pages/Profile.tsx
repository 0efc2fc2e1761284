import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { api, ApiFailure, call, type Schemas } from "../api/client";
import { RecoveryCodes, SecondFactorKey } from "../auth/SecondFactorKey";
import { Field, values } from "../ui/Field";
import { session } from "../auth/session";
import { useMe } from "../auth/useSession";
import { Problem } from "../ui/Problem";
import { relativeTime, roleLabel } from "./format";

/** The signed-in user's own page: who they are, their password, their second factor, their logins. */
export function Profile() {
  const me = useMe();
  return (
    <section className="page narrow" aria-labelledby="profile-title">
      <h1 id="profile-title">Your profile</h1>
      {me.isPending && <p role="status">Loading…</p>}
      {me.isError && <Problem error={me.error} title="Your profile could not be loaded" />}
      {me.data && (
        <>
          <dl className="facts">
            <dt>Name</dt><dd>{me.data.name}</dd>
            <dt>E-mail</dt><dd>{me.data.email}</dd>
            <dt>Role</dt><dd>{roleLabel(me.data.role)}</dd>
            <dt>Organization</dt><dd>{me.data.organization.name}</dd>
          </dl>
          <p className="muted small">An administrator changes names and roles (Users).</p>
          {me.data.sessionId ? (
            <>
              <ChangePassword />
              <SecondFactor />
              <Logins />
            </>
          ) : (
            <p className="notice">You are using an API key: passwords and logins belong to people who sign in.</p>
          )}
        </>
      )}
    </section>
  );
}

function ChangePassword() {
  const [done, setDone] = useState(false);
  const client = useQueryClient();
  const change = useMutation({
    mutationFn: (body: { currentPassword: string; newPassword: string }) =>
      call(() => api.PUT("/api/auth/password", { body })),
    onSuccess: async () => {
      setDone(true);
      await client.invalidateQueries({ queryKey: ["logins"] });
    },
  });
  const failure = change.error instanceof ApiFailure ? change.error : null;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setDone(false);
    change.mutate({
      currentPassword: String(form.get("currentPassword") ?? ""),
      newPassword: String(form.get("newPassword") ?? ""),
    });
    event.currentTarget.reset();
  };
  return (
    <section aria-labelledby="password-title" className="panel">
      <h2 id="password-title">Password</h2>
      <form onSubmit={submit} className="form" noValidate>
        <label htmlFor="currentPassword">Current password</label>
        <input id="currentPassword" name="currentPassword" type="password" autoComplete="current-password" required
          aria-invalid={failure?.forField("currentPassword") || failure?.code === "AUTH_INVALID_CREDENTIALS" ? true : undefined} />
        {failure?.code === "AUTH_INVALID_CREDENTIALS" && <p className="field-error">The current password is not right.</p>}
        {failure?.forField("currentPassword") && <p className="field-error">{failure.forField("currentPassword")}</p>}
        <label htmlFor="newPassword">New password</label>
        <input id="newPassword" name="newPassword" type="password" autoComplete="new-password" required minLength={8}
          aria-invalid={failure?.forField("newPassword") ? true : undefined} aria-describedby="newPassword-hint" />
        <p id="newPassword-hint" className={failure?.forField("newPassword") ? "field-error" : "muted small"}>
          {failure?.forField("newPassword") ?? "At least 8 characters, not a common password. Your other logins end."}
        </p>
        {failure && !failure.details.length && failure.code !== "AUTH_INVALID_CREDENTIALS" && <Problem error={failure} title="The password was not changed" />}
        {done && <p className="notice" role="status">Your password is changed; your other logins have ended.</p>}
        <div className="actions">
          <button type="submit" disabled={change.isPending}>{change.isPending ? "Changing…" : "Change password"}</button>
        </div>
      </form>
    </section>
  );
}

type Enrolling =
  | { step: "idle" }
  | { step: "password" }
  | { step: "scan"; enrolment: Schemas["MfaEnrolment"] }
  | { step: "codes"; codes: string[] }
  | { step: "remove" };

/** The second factor: its state, setting one up (QR code, first code, recovery codes) and removing it. */
function SecondFactor() {
  const client = useQueryClient();
  const status = useQuery({ queryKey: ["mfa"], queryFn: () => call(() => api.GET("/api/auth/mfa")) });
  const [flow, setFlow] = useState<Enrolling>({ step: "idle" });
  const refresh = () => client.invalidateQueries({ queryKey: ["mfa"] });
  const enroll = useMutation({
    mutationFn: (password: string) => call(() => api.POST("/api/auth/mfa/enroll", { body: { password } })),
    onSuccess: (enrolment) => setFlow({ step: "scan", enrolment }),
  });
  const confirm = useMutation({
    mutationFn: (code: string) => call(() => api.POST("/api/auth/mfa/confirm", { body: { code } })),
    onSuccess: async (answer) => {
      setFlow({ step: "codes", codes: "recoveryCodes" in answer ? answer.recoveryCodes ?? [] : [] });
      await refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (body: Schemas["MfaRemoval"]) => call(() => api.DELETE("/api/auth/mfa", { body })),
    onSuccess: async () => {
      setFlow({ step: "idle" });
      await refresh();
    },
  });
  const cancel = () => {
    enroll.reset();
    confirm.reset();
    remove.reset();
    setFlow({ step: "idle" });
  };
  const onPassword = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    enroll.mutate(values(event.currentTarget, ["password"]).password);
  };
  const onCode = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    confirm.mutate(values(event.currentTarget, ["code"]).code);
  };
  const onRemove = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { password, code } = values(event.currentTarget, ["password", "code"]);
    remove.mutate(/^\d{6}$/.test(code) || code === "" ? { password, code: code || null } : { password, recoveryCode: code });
  };
  const data = status.data;
  return (
    <section aria-labelledby="mfa-title" className="panel">
      <h2 id="mfa-title">Second factor</h2>
      {status.isPending && <p role="status">Loading…</p>}
      {status.isError && <Problem error={status.error} />}
      {data && flow.step === "idle" && (
        <>
          <p>
            {data.enabled
              ? `An authenticator app is set up; ${data.recoveryCodesLeft} recovery code${data.recoveryCodesLeft === 1 ? "" : "s"} left.`
              : data.pending
                ? "Setting up an authenticator app was started but not confirmed."
                : "No second factor is set up. With one, a stolen password is not enough to sign in as you."}
            {data.requiredForYourRole && " Your organization requires one for your role."}
          </p>
          <div className="actions">
            {!data.enabled && <button type="button" onClick={() => setFlow({ step: "password" })}>Set up an authenticator app</button>}
            {data.enabled && !data.requiredForYourRole && (
              <button type="button" className="secondary" onClick={() => setFlow({ step: "remove" })}>Remove the second factor</button>
            )}
          </div>
        </>
      )}
      {flow.step === "password" && (
        <form onSubmit={onPassword} className="form" noValidate>
          <p>Give your password again to create a new key.</p>
          <Field name="password" id="mfa-password" label="Password" type="password" autoComplete="current-password" required autoFocus
            failure={enroll.error} />
          {enroll.error instanceof ApiFailure && enroll.error.code === "AUTH_INVALID_CREDENTIALS" && <p className="field-error">The password is not right.</p>}
          {enroll.isError && !(enroll.error instanceof ApiFailure && (enroll.error.code === "AUTH_INVALID_CREDENTIALS" || enroll.error.details.length)) && <Problem error={enroll.error} title="No key was created" />}
          <div className="actions">
            <button type="submit" disabled={enroll.isPending}>{enroll.isPending ? "Creating…" : "Continue"}</button>
            <button type="button" className="secondary" onClick={cancel}>Cancel</button>
          </div>
        </form>
      )}
      {flow.step === "scan" && (
        <form onSubmit={onCode} className="form" noValidate>
          <SecondFactorKey enrolment={flow.enrolment} />
          <Field name="code" id="mfa-code" label="The 6-digit code the app shows" inputMode="numeric" autoComplete="one-time-code" required autoFocus
            failure={confirm.error} />
          {confirm.isError && !(confirm.error instanceof ApiFailure && confirm.error.details.length) && <Problem error={confirm.error} title="The second factor is not set up" />}
          <div className="actions">
            <button type="submit" disabled={confirm.isPending}>{confirm.isPending ? "Checking…" : "Turn on"}</button>
            <button type="button" className="secondary" onClick={cancel}>Cancel</button>
          </div>
        </form>
      )}
      {flow.step === "codes" && (
        <>
          <p className="notice" role="status">Your second factor is on: signing in now asks for a code from the app.</p>
          <RecoveryCodes codes={flow.codes} />
          <div className="actions">
            <button type="button" onClick={cancel}>I have stored them</button>
          </div>
        </>
      )}
      {flow.step === "remove" && (
        <form onSubmit={onRemove} className="form" noValidate>
          <p>Give your password and a current code from the app (or a recovery code). Your recovery codes go too.</p>
          <Field name="password" id="remove-password" label="Password" type="password" autoComplete="current-password" required autoFocus
            failure={remove.error} />
          <Field name="code" id="remove-code" label="Code from the app, or a recovery code" autoComplete="one-time-code" required
            failure={remove.error} />
          {remove.isError && !(remove.error instanceof ApiFailure && remove.error.details.length) && (
            <Problem error={remove.error}
              title={remove.error instanceof ApiFailure && remove.error.code === "AUTH_INVALID_CREDENTIALS" ? "The password or code is not right" : "The second factor was not removed"} />
          )}
          <div className="actions">
            <button type="submit" className="danger" disabled={remove.isPending}>{remove.isPending ? "Removing…" : "Remove"}</button>
            <button type="button" className="secondary" onClick={cancel}>Cancel</button>
          </div>
        </form>
      )}
    </section>
  );
}

function Logins() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const logins = useQuery({ queryKey: ["logins"], queryFn: () => call(() => api.GET("/api/auth/sessions")) });
  const end = useMutation({
    mutationFn: (id: string) => call(() => api.DELETE("/api/auth/sessions/{id}", { params: { path: { id } } })),
    onSuccess: async (ended) => {
      if (ended.wasCurrent) {
        session.clear();
        navigate("/sign-in");
        return;
      }
      await client.invalidateQueries({ queryKey: ["logins"] });
    },
  });
  return (
    <section aria-labelledby="logins-title" className="panel">
      <h2 id="logins-title">Where you are signed in</h2>
      {logins.isPending && <p role="status">Loading…</p>}
      {logins.isError && <Problem error={logins.error} title="Your logins could not be loaded" />}
      {end.isError && <Problem error={end.error} title="That login could not be ended" />}
      {logins.data && (
        <table className="table">
          <thead>
            <tr><th scope="col">Signed in</th><th scope="col">Last active</th><th scope="col">From</th><th scope="col"><span className="visually-hidden">Action</span></th></tr>
          </thead>
          <tbody>
            {logins.data.items.map((login) => {
              const current = login.id === logins.data.current;
              return (
                <tr key={login.id}>
                  <td><time dateTime={login.signedInAt}>{new Date(login.signedInAt).toLocaleString()}</time>{current && <span className="badge tone-info"> This browser</span>}</td>
                  <td><time dateTime={login.lastRefreshedAt}>{relativeTime(login.lastRefreshedAt)}</time></td>
                  <td>{login.ipAddress ?? "unknown address"}<br /><span className="muted small">{browserOf(login.userAgent)}</span></td>
                  <td>
                    <button type="button" className="secondary" disabled={end.isPending} onClick={() => end.mutate(login.id)}
                      aria-label={current ? "Sign out here" : `End the login from ${login.ipAddress ?? "an unknown address"}`}>
                      {current ? "Sign out here" : "End"}
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** A short name for a user agent ("Chrome on Linux"), or the agent itself. */
export function browserOf(agent: string | null | undefined): string {
  if (!agent) return "unknown browser";
  const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox" : /Chrome\//.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : null;
  const system = /Windows/.test(agent) ? "Windows" : /Mac OS X/.test(agent) ? "macOS" : /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Linux/.test(agent) ? "Linux" : null;
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? agent.slice(0, 60);
}

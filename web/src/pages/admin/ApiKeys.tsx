import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiFailure, call, type Schemas } from "../../api/client";
import { useMe, type Permission } from "../../auth/useSession";
import { Dialog } from "../../ui/Dialog";
import { Field } from "../../ui/Field";
import { Problem } from "../../ui/Problem";
import { ShownOnce } from "../../ui/Secret";
import { relativeTime } from "../format";
import { allowlist, endOfDay, keyStanding } from "./admin";

type ApiKey = Schemas["ApiKey"];

/** What each scope lets a key do, as the API's permissions mean it. */
const SCOPES: Record<Permission, string> = {
  "instruments:view": "See instruments, their status and readings",
  "instruments:manage": "Register, change and remove instruments",
  "instruments:control": "Send commands to instruments",
  "runs:view": "See runs, their QC and data",
  "runs:create": "Start and stop runs, upload data, sign",
  "data:export": "Download run data",
  "users:manage": "Manage users and invitations",
  "audit:view": "Read, verify and export the audit trail",
  "assistant:execute": "Use the assistant",
  "keys:manage": "Manage API keys and bridges",
  "webhooks:manage": "Manage webhooks",
};

/** `/admin/api-keys`: the organization's keys, making one (shown once) and revoking one. */
export function ApiKeys() {
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Schemas["ApiKeyCreated"] | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [notice, setNotice] = useState("");
  const me = useMe();
  const keys = useQuery({ queryKey: ["api-keys"], queryFn: () => call(() => api.GET("/api/v1/api-keys")) });
  const users = useQuery({ queryKey: ["users"], queryFn: () => call(() => api.GET("/api/v1/users")), enabled: me.data?.permissions.includes("users:manage") ?? false });
  const owner = (id: string) => (id === me.data?.id ? "you" : users.data?.items.find((u) => u.id === id)?.name ?? "another user");

  return (
    <section className="panel" aria-labelledby="keys-title">
      <div className="panel-head">
        <h2 id="keys-title">API keys</h2>
        <button type="button" onClick={() => { setCreated(null); setNotice(""); setCreating(true); }}>Create an API key…</button>
      </div>
      <p className="muted small">
        A key acts as the person who made it, limited to its scopes. Send it as <code>X-API-Key</code>. Bridges have their own keys, listed here too.
      </p>
      {notice && <p className="notice" role="status">{notice}</p>}
      {created && (
        <div className="confirm" role="region" aria-labelledby="created-key-title">
          <h3 id="created-key-title">Your new key “{created.name}”</h3>
          <p>Copy it now: it is shown only this once. Antevus keeps only its hash.</p>
          <ShownOnce id="new-key" label="API key" value={created.key} />
          <div className="actions start">
            <button type="button" className="secondary" onClick={() => setCreated(null)}>I have stored it</button>
          </div>
        </div>
      )}
      {keys.isPending && <p role="status">Loading API keys…</p>}
      {keys.isError && <Problem error={keys.error} title="The API keys could not be loaded" />}
      {keys.isSuccess && keys.data.items.length === 0 && (
        <div className="empty"><p>No API key yet. Make one for a script, a LIMS or an integration.</p></div>
      )}
      {keys.isSuccess && keys.data.items.length > 0 && (
        <div className="scroll">
          <table className="table">
            <caption className="visually-hidden">API keys, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Name</th><th scope="col">Key</th><th scope="col">Scopes</th><th scope="col">Allowed from</th>
                <th scope="col">Expires</th><th scope="col">Used</th><th scope="col">Status</th><th scope="col"><span className="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {keys.data.items.map((key) => {
                const standing = keyStanding(key);
                return (
                  <tr key={key.id} data-key={key.name}>
                    <td>{key.name}<div className="muted small">by {owner(key.userId)}, {new Date(key.createdAt).toLocaleDateString()}</div></td>
                    <td><code>{key.keyPrefix}…</code></td>
                    <td><ul className="scopes">{key.permissions.map((p) => <li key={p}><code title={SCOPES[p]}>{p}</code></li>)}</ul></td>
                    <td>{key.ipAllowlist.length ? key.ipAllowlist.map((c) => <div key={c}><code>{c}</code></div>) : <span className="muted">anywhere</span>}</td>
                    <td>{key.expiresAt ? new Date(key.expiresAt).toLocaleDateString() : <span className="muted">never</span>}</td>
                    <td>
                      {key.usageCount.toLocaleString()} request{key.usageCount === 1 ? "" : "s"}
                      <div className="muted small">{key.lastUsedAt ? `last ${relativeTime(key.lastUsedAt)}` : "never used"}</div>
                      {key.rateLimit != null && <div className="muted small">{key.rateLimit}/min</div>}
                    </td>
                    <td><span className={`badge key-${standing}`}>{standing === "active" ? "Active" : standing === "revoked" ? "Revoked" : "Expired"}</span></td>
                    <td className="row-actions">
                      {key.isActive && (
                        <button type="button" className="secondary small-button danger-text" aria-label={`Revoke the key ${key.name}`}
                          onClick={() => setRevoking(key)}>Revoke…</button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {creating && me.data && (
        <CreateKey scopes={me.data.permissions} onClose={() => setCreating(false)}
          onCreated={(key) => { setCreating(false); setCreated(key); }} />
      )}
      {revoking && (
        <RevokeKey apiKey={revoking} onClose={() => setRevoking(null)}
          onDone={() => { setNotice(`The key ${revoking.name} is revoked: requests with it are refused from now on.`); setRevoking(null); }} />
      )}
    </section>
  );
}

function CreateKey({ scopes, onClose, onCreated }: {
  scopes: Permission[];
  onClose: () => void;
  onCreated: (key: Schemas["ApiKeyCreated"]) => void;
}) {
  const client = useQueryClient();
  const create = useMutation({
    mutationFn: (body: Schemas["ApiKeyInput"]) => call(() => api.POST("/api/v1/api-keys", { body })),
    onSuccess: async (key) => {
      await client.invalidateQueries({ queryKey: ["api-keys"] });
      onCreated(key);
    },
  });
  const [local, setLocal] = useState("");
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? "").trim();
    const chosen = form.getAll("permissions").map(String) as Permission[];
    if (chosen.length === 0) {
      setLocal("Choose at least one scope.");
      return;
    }
    setLocal("");
    const expires = endOfDay(text("expiresOn"));
    const rate = text("rateLimit");
    create.mutate({
      name: text("name"),
      permissions: chosen,
      ipAllowlist: allowlist(text("ipAllowlist")),
      ...(expires ? { expiresAt: expires } : {}),
      ...(rate ? { rateLimit: Number(rate) } : {}),
    });
  };
  const failure = create.error instanceof ApiFailure ? create.error : null;
  const fieldError = (name: string) => failure?.details.find((d) => d.field === name || d.field.startsWith(`${name}[`))?.message;
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  return (
    <Dialog title="Create an API key" onClose={onClose}
      description={<p>Give it only the scopes it needs. It can never do more than you can.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <Field name="name" id="key-name" label="Name" required maxLength={255} failure={create.error}
          hint="What uses it, e.g. “LIMS nightly export”." />
        <fieldset aria-describedby={local || fieldError("permissions") ? "key-scopes-error" : undefined}>
          <legend>Scopes</legend>
          {scopes.map((p) => (
            <div className="check" key={p}>
              <label htmlFor={`scope-${p}`}><code>{p}</code> <span className="muted small">{SCOPES[p]}</span></label>
              <input id={`scope-${p}`} type="checkbox" name="permissions" value={p} defaultChecked={p === "instruments:view" || p === "runs:view"} />
            </div>
          ))}
          {(local || fieldError("permissions")) && <p id="key-scopes-error" className="field-error">{local || fieldError("permissions")}</p>}
        </fieldset>
        <label htmlFor="key-allowlist">Allowed from (optional)</label>
        <textarea id="key-allowlist" name="ipAllowlist" rows={2} spellCheck={false} aria-describedby="key-allowlist-hint"
          aria-invalid={fieldError("ipAllowlist") ? true : undefined} placeholder="10.20.0.0/16" />
        <p id="key-allowlist-hint" className={fieldError("ipAllowlist") ? "field-error" : "muted small"}>
          {fieldError("ipAllowlist") ?? "Addresses or CIDR blocks, one a line, up to 32. Empty: from anywhere."}
        </p>
        <Field name="expiresOn" id="key-expires" label="Expires on (optional)" type="date" min={tomorrow}
          hint="It stops working at the end of that day. Empty: never." />
        {fieldError("expiresAt") && <p className="field-error">{fieldError("expiresAt")}</p>}
        <Field name="rateLimit" id="key-rate" label="Requests per minute (optional)" type="number" min={1} inputMode="numeric"
          failure={create.error} hint="Only slower than your role's limit. Empty: your role's limit." />
        {create.isError && <Problem error={create.error} title="The key was not created" fields={["name", "permissions", "ipAllowlist", "expiresAt", "rateLimit"]} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={create.isPending}>{create.isPending ? "Creating…" : "Create key"}</button>
        </div>
      </form>
    </Dialog>
  );
}

/** Revokes a key (a person's or a bridge's) after a confirmation. */
export function RevokeKey({ apiKey, what, onClose, onDone }: {
  apiKey: { id: string; name: string };
  what?: string;
  onClose: () => void;
  onDone: () => void;
}) {
  const client = useQueryClient();
  const revoke = useMutation({
    mutationFn: () => call(() => api.DELETE("/api/v1/api-keys/{id}", { params: { path: { id: apiKey.id } } })),
    onSuccess: async () => {
      await Promise.all([
        client.invalidateQueries({ queryKey: ["api-keys"] }),
        client.invalidateQueries({ queryKey: ["bridges"] }),
      ]);
      onDone();
    },
  });
  return (
    <Dialog title={what ? `Take ${apiKey.name} out of service` : `Revoke the key ${apiKey.name}`} onClose={onClose}
      description={<p>{what ?? "Every request made with it is refused from now on. This cannot be undone: make a new key instead."}</p>}>
      {revoke.isError && <Problem error={revoke.error} title="Nothing was revoked" />}
      <div className="actions">
        <button type="button" className="secondary" onClick={onClose}>Cancel</button>
        <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate()}>
          {what ? "Revoke its key" : "Revoke key"}
        </button>
      </div>
    </Dialog>
  );
}

import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type Schemas } from "../../api/client";
import { useCan } from "../../auth/useSession";
import { Dialog } from "../../ui/Dialog";
import { Field } from "../../ui/Field";
import { Problem } from "../../ui/Problem";
import { ShownOnce } from "../../ui/Secret";
import { statusLabel } from "../format";
import { RevokeKey } from "./ApiKeys";
import { BridgeTable } from "./BridgeTable";
import { enrollCommand } from "./admin";

type Bridge = Schemas["Bridge"];
type JoinToken = Schemas["JoinTokenListed"];

/** `/admin/bridges`: the lab's edge bridges, their health, and the tokens that enroll new ones. */
export function Bridges() {
  const canManage = useCan("keys:manage");
  const [retiring, setRetiring] = useState<Bridge | null>(null);
  const [notice, setNotice] = useState("");
  const bridges = useQuery({
    queryKey: ["bridges"],
    queryFn: () => call(() => api.GET("/api/v1/bridges")),
    // A bridge beats every few seconds: its health is worth keeping current.
    refetchInterval: 15_000,
  });
  const instruments = useQuery({
    queryKey: ["instruments", "all"],
    queryFn: () => call(() => api.GET("/api/v1/instruments", { params: { query: { limit: 100 } } })),
  });

  return (
    <>
      <section className="panel" aria-labelledby="bridges-title">
        <div className="panel-head">
          <h2 id="bridges-title">Bridges</h2>
          {bridges.isSuccess && (
            <span className="muted">{bridges.data.items.filter((b) => b.online).length} of {bridges.data.items.length} online</span>
          )}
        </div>
        {notice && <p className="notice" role="status">{notice}</p>}
        {bridges.isPending && <p role="status">Loading bridges…</p>}
        {bridges.isError && <Problem error={bridges.error} title="The bridges could not be loaded" />}
        {bridges.isSuccess && bridges.data.items.length === 0 && (
          <div className="empty">
            <p>No bridge is enrolled. A bridge runs on a computer in the lab and relays its instruments to Antevus.</p>
            {canManage && <p>Make a join token below and run its enroll command on that computer.</p>}
          </div>
        )}
        {bridges.isSuccess && bridges.data.items.length > 0 && (
          <BridgeTable bridges={bridges.data.items} instruments={instruments.data?.items ?? []}
            onRevoke={canManage ? setRetiring : undefined} />
        )}
      </section>
      {canManage && <JoinTokens />}
      {retiring && (
        <RevokeKey apiKey={{ id: retiring.apiKeyId, name: retiring.name }} onClose={() => setRetiring(null)}
          what="Its key is revoked: it can no longer send readings or take commands, and its instruments go to the next bridge that reports them. Readings still in its disk queue stay there."
          onDone={() => { setNotice(`${retiring.name} is out of service.`); setRetiring(null); }} />
      )}
    </>
  );
}

function JoinTokens() {
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Schemas["JoinToken"] | null>(null);
  const [revoking, setRevoking] = useState<JoinToken | null>(null);
  const [notice, setNotice] = useState("");
  const client = useQueryClient();
  // Read again with the bridges: a token is used the moment its bridge enrolls.
  const tokens = useQuery({
    queryKey: ["join-tokens"],
    queryFn: () => call(() => api.GET("/api/v1/bridges/join-tokens")),
    refetchInterval: 15_000,
  });
  const done = () => {
    setCreated(null);
    void client.invalidateQueries({ queryKey: ["join-tokens"] });
    void client.invalidateQueries({ queryKey: ["bridges"] });
  };
  return (
    <section className="panel" aria-labelledby="tokens-title">
      <div className="panel-head">
        <h2 id="tokens-title">Join tokens</h2>
        <button type="button" onClick={() => { setCreated(null); setNotice(""); setCreating(true); }}>Make a join token…</button>
      </div>
      <p className="muted small">A join token enrolls one bridge, once, before it expires.</p>
      {notice && <p className="notice" role="status">{notice}</p>}
      {created && (
        <div className="confirm" role="region" aria-labelledby="created-token-title">
          <h3 id="created-token-title">Enroll “{created.name}”</h3>
          <p>
            On the lab computer that will run the bridge, run this command before{" "}
            <time dateTime={created.expiresAt}>{new Date(created.expiresAt).toLocaleString()}</time>. The token is shown only this once.
          </p>
          <ShownOnce id="enroll-command" label="Enroll command" value={enrollCommand(window.location.origin, created.token)} multiline />
          <div className="actions start">
            <button type="button" className="secondary" onClick={done}>Done</button>
          </div>
        </div>
      )}
      {tokens.isPending && <p role="status">Loading join tokens…</p>}
      {tokens.isError && <Problem error={tokens.error} title="The join tokens could not be loaded" />}
      {tokens.isSuccess && tokens.data.items.length === 0 && <div className="empty"><p>No join token has been made.</p></div>}
      {tokens.isSuccess && tokens.data.items.length > 0 && (
        <div className="scroll">
          <table className="table">
            <caption className="visually-hidden">Join tokens, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Bridge name</th><th scope="col">Status</th><th scope="col">Made by</th><th scope="col">Made</th>
                <th scope="col">Until</th><th scope="col"><span className="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.items.map((token) => (
                <tr key={token.id} data-token={token.name}>
                  <td>{token.name}</td>
                  <td><span className={`badge token-${token.status}`}>{token.status === "used" ? "Used" : statusLabel(token.status)}</span></td>
                  <td>{token.createdByName ?? <span className="muted">a former user</span>}</td>
                  <td><time dateTime={token.createdAt}>{new Date(token.createdAt).toLocaleString()}</time></td>
                  <td>{tokenEnd(token)}</td>
                  <td className="row-actions">
                    {token.status === "active" && (
                      <button type="button" className="secondary small-button danger-text" aria-label={`Revoke the join token ${token.name}`}
                        onClick={() => setRevoking(token)}>Revoke…</button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && <MakeToken onClose={() => setCreating(false)} onMade={(t) => { setCreating(false); setCreated(t); }} />}
      {revoking && (
        <RevokeToken token={revoking} onClose={() => setRevoking(null)}
          onDone={() => { setNotice(`The join token for ${revoking.name} is revoked.`); setRevoking(null); }} />
      )}
    </section>
  );
}

function tokenEnd(token: JoinToken) {
  const when = (iso: string) => <time dateTime={iso}>{new Date(iso).toLocaleString()}</time>;
  if (token.status === "used" && token.usedAt) return <>enrolled {when(token.usedAt)}</>;
  if (token.status === "revoked" && token.revokedAt) return <>revoked {when(token.revokedAt)}</>;
  if (token.status === "expired") return <>expired {when(token.expiresAt)}</>;
  return <>until {when(token.expiresAt)}</>;
}

const LIFETIMES: { minutes: number; label: string }[] = [
  { minutes: 60, label: "1 hour" },
  { minutes: 480, label: "8 hours" },
  { minutes: 1440, label: "1 day" },
  { minutes: 10080, label: "7 days" },
];

function MakeToken({ onClose, onMade }: { onClose: () => void; onMade: (t: Schemas["JoinToken"]) => void }) {
  const client = useQueryClient();
  const make = useMutation({
    mutationFn: (body: Schemas["JoinTokenInput"]) => call(() => api.POST("/api/v1/bridges/join-tokens", { body })),
    onSuccess: async (token) => {
      await client.invalidateQueries({ queryKey: ["join-tokens"] });
      onMade(token);
    },
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    make.mutate({ name: String(form.get("name") ?? "").trim(), expiresInMinutes: Number(form.get("expiresInMinutes")) });
  };
  return (
    <Dialog title="Make a join token" onClose={onClose}
      description={<p>The bridge it enrolls takes this name. Make it short-lived: it only needs to last until you run the command.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <Field name="name" id="token-name" label="Bridge name" required maxLength={255} failure={make.error}
          hint="Where it runs, e.g. “Lab 2 bench PC”." />
        <label htmlFor="token-lifetime">Works for</label>
        <select id="token-lifetime" name="expiresInMinutes" defaultValue="60">
          {LIFETIMES.map((l) => <option key={l.minutes} value={l.minutes}>{l.label}</option>)}
        </select>
        {make.isError && <Problem error={make.error} title="No token was made" fields={["name"]} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={make.isPending}>{make.isPending ? "Making…" : "Make token"}</button>
        </div>
      </form>
    </Dialog>
  );
}

function RevokeToken({ token, onClose, onDone }: { token: JoinToken; onClose: () => void; onDone: () => void }) {
  const client = useQueryClient();
  const revoke = useMutation({
    mutationFn: () => call(() => api.DELETE("/api/v1/bridges/join-tokens/{id}", { params: { path: { id: token.id } } })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["join-tokens"] });
      onDone();
    },
  });
  return (
    <Dialog title="Revoke the join token" onClose={onClose}
      description={<p>The token for “{token.name}” stops working at once; no bridge can enroll with it.</p>}>
      {revoke.isError && <Problem error={revoke.error} title="The token was not revoked" />}
      <div className="actions">
        <button type="button" className="secondary" onClick={onClose}>Keep it</button>
        <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate()}>Revoke token</button>
      </div>
    </Dialog>
  );
}

import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiFailure, call, type Schemas } from "../../api/client";
import { useMe } from "../../auth/useSession";
import { Dialog } from "../../ui/Dialog";
import { Problem } from "../../ui/Problem";

type Meaning = Schemas["Meaning"];

/** What each meaning says, as the signer reads it before signing. */
export const MEANINGS: { value: Meaning; label: string; says: string }[] = [
  { value: "review", label: "Review", says: "I have reviewed this run and its data." },
  { value: "approval", label: "Approval", says: "I approve this run and its results." },
  { value: "responsibility", label: "Responsibility", says: "I am responsible for this run." },
  { value: "authorship", label: "Authorship", says: "I performed this run." },
];

const STATUS: Record<Schemas["SignatureStatus"], { label: string; tone: string }> = {
  valid: { label: "Valid", tone: "status-online" },
  invalidated: { label: "No longer valid: the run changed after signing", tone: "tone-warn" },
  tampered: { label: "Tampered: the record no longer matches its seal", tone: "tone-bad" },
};

/**
 * A run's electronic signatures (21 CFR Part 11), each checked now by the
 * API: meaning, printed name, time, the version signed and whether it
 * still holds; signing, once the run has ended, with the signer's e-mail
 * and password again (and their authenticator's code when they have one).
 */
export function Signatures({ run }: { run: Schemas["Run"] }) {
  const me = useMe();
  const [signing, setSigning] = useState(false);
  const signatures = useQuery({
    queryKey: ["run-signatures", run.id, run.version],
    queryFn: () => call(() => api.GET("/api/v1/runs/{id}/signatures", { params: { path: { id: run.id } } })),
  });
  const ended = run.status !== "pending" && run.status !== "running";
  const byKey = !!me.data?.apiKeyId;
  return (
    <section className="panel" aria-labelledby="signatures-title">
      <div className="panel-head">
        <h2 id="signatures-title">Signatures</h2>
        {ended && !byKey && <button type="button" onClick={() => setSigning(true)}>Sign…</button>}
      </div>
      {!ended && <p className="muted small">A run is signed once it has ended.</p>}
      {signatures.isPending && <p role="status">Loading the signatures…</p>}
      {signatures.isError && <Problem error={signatures.error} title="The signatures could not be loaded" />}
      {signatures.isSuccess && signatures.data.items.length === 0 && <p className="muted">Not signed.</p>}
      {signatures.isSuccess && signatures.data.items.length > 0 && (
        <ul className="plain signatures">
          {signatures.data.items.map((s) => (
            <li key={s.id} className="signature" data-signature={s.meaning}>
              <div>
                <strong>{MEANINGS.find((m) => m.value === s.meaning)?.label ?? s.meaning}</strong> by {s.printedName}
                <span className={`badge ${STATUS[s.status].tone}`}>{STATUS[s.status].label}</span>
              </div>
              <div className="muted small">
                <time dateTime={s.signedAt}>{new Date(s.signedAt).toLocaleString()}</time> ({s.signedAt.replace("T", " ").slice(0, 19)} UTC), on version {s.runVersion}
              </div>
              {s.comment && <div className="small">“{s.comment}”</div>}
              {s.detail && <div className="small">{s.detail}</div>}
            </li>
          ))}
        </ul>
      )}
      {signing && <Sign run={run} onClose={() => setSigning(false)} />}
    </section>
  );
}

function Sign({ run, onClose }: { run: Schemas["Run"]; onClose: () => void }) {
  const client = useQueryClient();
  const me = useMe();
  const factor = useQuery({ queryKey: ["mfa"], queryFn: () => call(() => api.GET("/api/auth/mfa")) });
  const [meaning, setMeaning] = useState<Meaning>("review");
  const sign = useMutation({
    mutationFn: (body: Schemas["SignInput"]) =>
      call(() => api.POST("/api/v1/runs/{id}/signatures", { params: { path: { id: run.id } }, body })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["run", run.id] });
      await client.invalidateQueries({ queryKey: ["run-signatures", run.id] });
      onClose();
    },
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? "").trim();
    sign.mutate({
      meaning,
      email: text("email"),
      password: String(form.get("password") ?? ""),
      ...(text("comment") ? { comment: text("comment") } : {}),
      ...(text("code") ? { code: text("code") } : {}),
    });
    // The password never stays in the page.
    const password = event.currentTarget.elements.namedItem("password") as HTMLInputElement | null;
    if (password) password.value = "";
  };
  const failure = sign.error instanceof ApiFailure ? sign.error : null;
  const wrong = failure?.status === 401;
  const says = MEANINGS.find((m) => m.value === meaning)?.says;
  return (
    <Dialog title={`Sign ${run.name ?? "this run"}`} onClose={onClose}
      description={<p>Your signature is bound to version {run.version} of this run; a later change invalidates it. It is your legally binding equivalent of a handwritten signature.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <fieldset>
          <legend>Meaning</legend>
          {MEANINGS.map((m) => (
            <div className="check" key={m.value}>
              <label htmlFor={`meaning-${m.value}`}>{m.label} <span className="muted small">{m.says}</span></label>
              <input type="radio" id={`meaning-${m.value}`} name="meaning" value={m.value} checked={meaning === m.value}
                onChange={() => setMeaning(m.value)} />
            </div>
          ))}
        </fieldset>
        <label htmlFor="sign-comment">Comment (optional)</label>
        <textarea id="sign-comment" name="comment" rows={2} maxLength={1000} />
        <p className="muted small">Sign as {me.data?.name}: enter your e-mail and password again.</p>
        <label htmlFor="sign-email">E-mail</label>
        <input id="sign-email" name="email" type="email" autoComplete="username" required aria-invalid={wrong ? true : undefined} />
        <label htmlFor="sign-password">Password</label>
        <input id="sign-password" name="password" type="password" autoComplete="current-password" required aria-invalid={wrong ? true : undefined} />
        {factor.data?.enabled && (
          <>
            <label htmlFor="sign-code">Authenticator code</label>
            <input id="sign-code" name="code" inputMode="numeric" autoComplete="one-time-code" pattern="\d{6}" maxLength={6} required />
          </>
        )}
        {says && <p className="confirm-line"><strong>{says}</strong></p>}
        {sign.isError && <Problem error={sign.error} title={wrong ? "Not signed: the e-mail, password or code is not right" : "The run was not signed"} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={sign.isPending}>{sign.isPending ? "Signing…" : "Sign"}</button>
        </div>
      </form>
    </Dialog>
  );
}

import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiFailure, call, type Schemas } from "../../api/client";
import { useMe } from "../../auth/useSession";
import { Dialog } from "../../ui/Dialog";
import { Field, values } from "../../ui/Field";
import { Problem } from "../../ui/Problem";
import { relativeTime, roleLabel, statusLabel } from "../format";
import { assignableRoles } from "./admin";

type User = Schemas["User"];
type Invitation = Schemas["Invitation"];
type Role = Schemas["Role"];

/** What is being done to a user, in a dialog. */
type Action =
  | { kind: "role"; user: User }
  | { kind: "standing"; user: User }
  | { kind: "mfa"; user: User }
  | { kind: "invite" }
  | { kind: "revoke"; invitation: Invitation };

/** `/admin/users`: the organization's people and the invitations still out. */
export function Users() {
  const me = useMe();
  const [action, setAction] = useState<Action | null>(null);
  const [notice, setNotice] = useState("");
  const users = useQuery({ queryKey: ["users"], queryFn: () => call(() => api.GET("/api/v1/users")) });
  const invitations = useQuery({ queryKey: ["invitations"], queryFn: () => call(() => api.GET("/api/v1/invitations")) });
  const done = (message: string) => {
    setAction(null);
    setNotice(message);
  };
  const pending = invitations.data?.items.filter((i) => i.status === "pending").length ?? 0;

  return (
    <>
      <section className="panel" aria-labelledby="users-title">
        <div className="panel-head">
          <h2 id="users-title">Users</h2>
          <button type="button" onClick={() => setAction({ kind: "invite" })}>Invite someone…</button>
        </div>
        {notice && <p className="notice" role="status">{notice}</p>}
        {users.isPending && <p role="status">Loading users…</p>}
        {users.isError && <Problem error={users.error} title="The users could not be loaded" />}
        {users.isSuccess && (
          <div className="scroll">
            <table className="table">
              <caption className="visually-hidden">The organization's users, oldest first</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th><th scope="col">E-mail</th><th scope="col">Role</th><th scope="col">Department</th>
                  <th scope="col">Standing</th><th scope="col">Last sign-in</th><th scope="col"><span className="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {users.data.items.map((user) => {
                  const self = user.id === me.data?.id;
                  // Only a super admin touches a super admin.
                  const untouchable = user.role === "SUPER_ADMIN" && me.data?.role !== "SUPER_ADMIN";
                  return (
                    <tr key={user.id} data-user={user.email}>
                      <td>{user.name}{self && <span className="muted"> (you)</span>}</td>
                      <td>{user.email}</td>
                      <td>{roleLabel(user.role)}</td>
                      <td>{user.department ?? <span className="muted">—</span>}</td>
                      <td>
                        <span className={`badge ${user.isActive ? "tone-good" : "tone-off"}`}>{user.isActive ? "Active" : "Deactivated"}</span>
                      </td>
                      <td>
                        {user.lastLoginAt ? (
                          <time dateTime={user.lastLoginAt} title={new Date(user.lastLoginAt).toLocaleString()}>{relativeTime(user.lastLoginAt)}</time>
                        ) : (
                          <span className="muted">never</span>
                        )}
                      </td>
                      <td className="row-actions">
                        {!self && !untouchable && (
                          <span className="button-row">
                            <button type="button" className="secondary small-button" aria-label={`Change ${user.name}'s role`}
                              onClick={() => setAction({ kind: "role", user })}>Role…</button>
                            <button type="button" className="secondary small-button"
                              aria-label={`${user.isActive ? "Deactivate" : "Reactivate"} ${user.name}`}
                              onClick={() => setAction({ kind: "standing", user })}>{user.isActive ? "Deactivate…" : "Reactivate…"}</button>
                            <button type="button" className="secondary small-button" aria-label={`Reset 2FA (the second factor) of ${user.name}`}
                              onClick={() => setAction({ kind: "mfa", user })}>Reset 2FA…</button>
                          </span>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="panel" aria-labelledby="invitations-title">
        <div className="panel-head">
          <h2 id="invitations-title">Invitations</h2>
          {invitations.isSuccess && <span className="muted">{pending} waiting to be accepted</span>}
        </div>
        {invitations.isPending && <p role="status">Loading invitations…</p>}
        {invitations.isError && <Problem error={invitations.error} title="The invitations could not be loaded" />}
        {invitations.isSuccess && invitations.data.items.length === 0 && (
          <div className="empty"><p>No invitation has been sent. Invite someone to give them an account with a role.</p></div>
        )}
        {invitations.isSuccess && invitations.data.items.length > 0 && (
          <div className="scroll">
            <table className="table">
              <caption className="visually-hidden">Invitations, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">E-mail</th><th scope="col">Role</th><th scope="col">Status</th><th scope="col">Invited by</th>
                  <th scope="col">Sent</th><th scope="col">Until</th><th scope="col"><span className="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {invitations.data.items.map((invitation) => (
                  <tr key={invitation.id} data-invitation={invitation.email}>
                    <td>{invitation.email}</td>
                    <td>{roleLabel(invitation.role)}</td>
                    <td><span className={`badge invitation-${invitation.status}`}>{statusLabel(invitation.status)}</span></td>
                    <td>{invitation.invitedByName ?? <span className="muted">a former user</span>}</td>
                    <td><time dateTime={invitation.createdAt}>{new Date(invitation.createdAt).toLocaleString()}</time></td>
                    <td>{invitationEnd(invitation)}</td>
                    <td className="row-actions">
                      {invitation.status === "pending" && (
                        <button type="button" className="secondary small-button danger-text" aria-label={`Revoke the invitation to ${invitation.email}`}
                          onClick={() => setAction({ kind: "revoke", invitation })}>Revoke…</button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {action?.kind === "invite" && me.data && (
        <Invite roles={assignableRoles(me.data.role)} onClose={() => setAction(null)}
          onDone={(i) => done(`The invitation is mailed to ${i.email}; its link works for 7 days.`)} />
      )}
      {action?.kind === "role" && me.data && (
        <ChangeRole user={action.user} roles={assignableRoles(me.data.role)} onClose={() => setAction(null)}
          onDone={(u) => done(`${u.name} is now ${roleLabel(u.role)}.`)} />
      )}
      {action?.kind === "standing" && (
        <ChangeStanding user={action.user} onClose={() => setAction(null)}
          onDone={(u) => done(u.isActive ? `${u.name} can sign in again.` : `${u.name} is deactivated; their logins have ended.`)} />
      )}
      {action?.kind === "mfa" && (
        <ResetSecondFactor user={action.user} onClose={() => setAction(null)}
          onDone={() => done(`${action.user.name}'s second factor is reset; they set up a new one when they next sign in.`)} />
      )}
      {action?.kind === "revoke" && (
        <RevokeInvitation invitation={action.invitation} onClose={() => setAction(null)}
          onDone={(i) => done(`The invitation to ${i.email} is revoked; its link no longer works.`)} />
      )}
    </>
  );
}

function invitationEnd(invitation: Invitation) {
  const at = (iso: string, what: string) => (
    <>{what} <time dateTime={iso}>{new Date(iso).toLocaleString()}</time></>
  );
  switch (invitation.status) {
    case "accepted":
      return invitation.acceptedAt ? at(invitation.acceptedAt, "accepted") : "accepted";
    case "revoked":
      return invitation.revokedAt ? at(invitation.revokedAt, "revoked") : "revoked";
    case "expired":
      return at(invitation.expiresAt, "expired");
    default:
      return at(invitation.expiresAt, "until");
  }
}

/** Changes a user with PUT /api/v1/users/:id, then refreshes the list. */
function useUserUpdate(user: User, onDone: (user: User) => void) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["UserUpdate"]) =>
      call(() => api.PUT("/api/v1/users/{id}", { params: { path: { id: user.id } }, body })),
    onSuccess: async (updated) => {
      await client.invalidateQueries({ queryKey: ["users"] });
      onDone(updated);
    },
  });
}

function ReasonField({ failure, required, hint }: { failure: unknown; required: boolean; hint: string }) {
  const error = failure instanceof ApiFailure ? failure.forField("reason") : undefined;
  return (
    <>
      <label htmlFor="admin-reason">Reason{required ? "" : " (optional)"}</label>
      <textarea id="admin-reason" name="reason" rows={3} maxLength={1000} required={required}
        aria-invalid={error ? true : undefined} aria-describedby="admin-reason-hint" />
      <p id="admin-reason-hint" className={error ? "field-error" : "muted small"}>{error ?? hint}</p>
    </>
  );
}

function ChangeRole({ user, roles, onClose, onDone }: { user: User; roles: Role[]; onClose: () => void; onDone: (u: User) => void }) {
  const update = useUserUpdate(user, onDone);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { role, reason } = values(event.currentTarget, ["role", "reason"]);
    update.mutate({ role: role as Role, reason });
  };
  const roleError = update.error instanceof ApiFailure ? update.error.forField("role") : undefined;
  return (
    <Dialog title={`Change ${user.name}'s role`} onClose={onClose}
      description={<p>They are {roleLabel(user.role)} now. The change takes effect on their next request.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <label htmlFor="admin-role">New role</label>
        <select id="admin-role" name="role" defaultValue={user.role} aria-invalid={roleError ? true : undefined}>
          {roles.map((r) => <option key={r} value={r}>{roleLabel(r)}</option>)}
        </select>
        {roleError && <p className="field-error">{roleError}</p>}
        <ReasonField failure={update.error} required hint="Required: it is kept with the change in the audit trail." />
        {update.isError && <Problem error={update.error} title="The role was not changed" fields={["role", "reason"]} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={update.isPending}>{update.isPending ? "Changing…" : "Change role"}</button>
        </div>
      </form>
    </Dialog>
  );
}

function ChangeStanding({ user, onClose, onDone }: { user: User; onClose: () => void; onDone: (u: User) => void }) {
  const update = useUserUpdate(user, onDone);
  const deactivating = user.isActive;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { reason } = values(event.currentTarget, ["reason"]);
    update.mutate({ isActive: !deactivating, ...(reason ? { reason } : {}) });
  };
  return (
    <Dialog title={deactivating ? `Deactivate ${user.name}` : `Reactivate ${user.name}`} onClose={onClose}
      description={<p>{deactivating
        ? "They can no longer sign in, and every login they have ends at once. Their records stay."
        : "They can sign in again with their password."}</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <ReasonField failure={update.error} required={false} hint="Kept with the change in the audit trail." />
        {update.isError && <Problem error={update.error} title="Nothing was changed" fields={["reason"]} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" className={deactivating ? "danger" : undefined} disabled={update.isPending}>
            {deactivating ? "Deactivate" : "Reactivate"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ResetSecondFactor({ user, onClose, onDone }: { user: User; onClose: () => void; onDone: () => void }) {
  const reset = useMutation({
    mutationFn: (reason: string) =>
      call(() => api.DELETE("/api/v1/users/{id}/mfa", { params: { path: { id: user.id } }, body: { reason } })),
    onSuccess: onDone,
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    reset.mutate(values(event.currentTarget, ["reason"]).reason);
  };
  return (
    <Dialog title={`Reset ${user.name}'s second factor`} onClose={onClose}
      description={<p>For someone who lost their authenticator and their recovery codes. Confirm who they are first.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <ReasonField failure={reset.error} required hint="Required: how you confirmed it is them, for the audit trail." />
        {reset.isError && <Problem error={reset.error} title="The second factor was not reset" fields={["reason"]} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" className="danger" disabled={reset.isPending}>Reset second factor</button>
        </div>
      </form>
    </Dialog>
  );
}

function Invite({ roles, onClose, onDone }: { roles: Role[]; onClose: () => void; onDone: (i: Invitation) => void }) {
  const client = useQueryClient();
  const invite = useMutation({
    mutationFn: (body: Schemas["InviteInput"]) => call(() => api.POST("/api/v1/users", { body })),
    onSuccess: async (invitation) => {
      await client.invalidateQueries({ queryKey: ["invitations"] });
      onDone(invitation);
    },
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { email, role, name } = values(event.currentTarget, ["email", "role", "name"]);
    invite.mutate({ email, role: role as Role, ...(name ? { name } : {}) });
  };
  const failure = invite.error instanceof ApiFailure ? invite.error : null;
  return (
    <Dialog title="Invite someone" onClose={onClose}
      description={<p>They get a mail with a link to make their account, valid for 7 days.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <Field name="email" id="invite-email" label="E-mail" type="email" autoComplete="off" required failure={invite.error} />
        <label htmlFor="invite-role">Role</label>
        <select id="invite-role" name="role" defaultValue="VIEWER" aria-invalid={failure?.forField("role") ? true : undefined}>
          {roles.map((r) => <option key={r} value={r}>{roleLabel(r)}</option>)}
        </select>
        {failure?.forField("role") && <p className="field-error">{failure.forField("role")}</p>}
        <Field name="name" id="invite-name" label="Name (optional)" hint="Only to greet them in the mail." maxLength={255} />
        {invite.isError && <Problem error={invite.error} title="The invitation was not sent" fields={["email", "role"]} />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={invite.isPending}>{invite.isPending ? "Sending…" : "Send invitation"}</button>
        </div>
      </form>
    </Dialog>
  );
}

function RevokeInvitation({ invitation, onClose, onDone }: { invitation: Invitation; onClose: () => void; onDone: (i: Invitation) => void }) {
  const client = useQueryClient();
  const revoke = useMutation({
    mutationFn: () => call(() => api.DELETE("/api/v1/invitations/{id}", { params: { path: { id: invitation.id } } })),
    onSuccess: async (revoked) => {
      await client.invalidateQueries({ queryKey: ["invitations"] });
      onDone(revoked);
    },
  });
  return (
    <Dialog title="Revoke the invitation" onClose={onClose}
      description={<p>The link mailed to {invitation.email} stops working at once. You can invite them again later.</p>}>
      {revoke.isError && <Problem error={revoke.error} title="The invitation was not revoked" />}
      <div className="actions">
        <button type="button" className="secondary" onClick={onClose}>Keep it</button>
        <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate()}>Revoke invitation</button>
      </div>
    </Dialog>
  );
}

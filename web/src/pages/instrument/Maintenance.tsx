import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type Schemas } from "../../api/client";
import { Field, values } from "../../ui/Field";
import { Problem } from "../../ui/Problem";
import { Dialog } from "../../ui/Dialog";
import { localInput } from "../ConfigField";
import { relativeTime } from "../format";

type Item = Schemas["Maintenance"];
type Kind = Schemas["MaintenanceKind"];

const KINDS: { kind: Kind; label: string }[] = [
  { kind: "calibration", label: "Calibration" },
  { kind: "preventive", label: "Preventive maintenance" },
  { kind: "inspection", label: "Inspection" },
  { kind: "repair", label: "Repair" },
];
export const kindLabel = (kind: string) => KINDS.find((k) => k.kind === kind)?.label ?? kind;

const STATUS_TONE: Record<string, string> = { overdue: "tone-bad", scheduled: "tone-info", completed: "status-online", cancelled: "status-offline" };

/**
 * The instrument's calibration and maintenance: the schedule (overdue
 * first, as the API orders it), completing an item (a calibration with its
 * reference standard and certificate, which sets the instrument's next due
 * date), cancelling one, and scheduling a new one.
 */
export function Maintenance({ instrument, canControl, canManage }: {
  instrument: Schemas["Instrument"];
  canControl: boolean;
  canManage: boolean;
}) {
  const client = useQueryClient();
  const items = useQuery({
    queryKey: ["instrument-maintenance", instrument.id],
    queryFn: () => call(() => api.GET("/api/v1/instruments/{id}/maintenance", { params: { path: { id: instrument.id } } })),
  });
  const [completing, setCompleting] = useState<Item | null>(null);
  const [scheduling, setScheduling] = useState(false);
  const refresh = async () => {
    await Promise.all([
      client.invalidateQueries({ queryKey: ["instrument-maintenance", instrument.id] }),
      client.invalidateQueries({ queryKey: ["instrument", instrument.id] }),
      client.invalidateQueries({ queryKey: ["instrument-status", instrument.id] }),
    ]);
  };
  const cal = instrument.calibration as { lastCalibratedAt?: string; dueAt?: string; certificate?: string } | null;
  const open = items.data?.items.filter((i) => i.status === "scheduled" || i.status === "overdue") ?? [];
  const done = items.data?.items.filter((i) => i.status === "completed" || i.status === "cancelled") ?? [];

  return (
    <section className="panel" aria-labelledby="maintenance-title">
      <div className="panel-head">
        <h2 id="maintenance-title">Calibration and maintenance</h2>
        {canManage && !instrument.deletedAt && (
          <button type="button" className="secondary" onClick={() => setScheduling(true)}>Schedule…</button>
        )}
      </div>
      <dl className="facts">
        <dt>Last calibrated</dt>
        <dd>{cal?.lastCalibratedAt ? new Date(cal.lastCalibratedAt).toLocaleDateString() : "Not recorded"}</dd>
        <dt>Calibration due</dt>
        <dd>
          {instrument.calibrationDueAt
            ? `${new Date(instrument.calibrationDueAt).toLocaleDateString()} (${relativeTime(instrument.calibrationDueAt)})`
            : "Not scheduled"}
        </dd>
        {cal?.certificate && (<><dt>Certificate</dt><dd>{cal.certificate}</dd></>)}
      </dl>
      {items.isPending && <p role="status">Loading the schedule…</p>}
      {items.isError && <Problem error={items.error} title="The schedule could not be loaded" />}
      {items.isSuccess && items.data.items.length === 0 && <p className="muted">Nothing is scheduled.</p>}
      {items.isSuccess && items.data.items.length > 0 && (
        <table className="table">
          <caption className="visually-hidden">Maintenance items</caption>
          <thead>
            <tr><th scope="col">What</th><th scope="col">Due</th><th scope="col">Status</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
          </thead>
          <tbody>
            {[...open, ...done].map((item) => (
              <tr key={item.id} data-maintenance={item.id}>
                <td>
                  {kindLabel(item.kind)}
                  {item.title && <span className="muted">: {item.title}</span>}
                  {item.notes && <p className="muted small">{item.notes}</p>}
                </td>
                <td>
                  <time dateTime={item.scheduledFor}>{new Date(item.scheduledFor).toLocaleDateString()}</time>
                  {item.completedAt && <p className="muted small">Done {new Date(item.completedAt).toLocaleDateString()}</p>}
                </td>
                <td><span className={`badge ${STATUS_TONE[item.status] ?? ""}`}>{item.status.charAt(0).toUpperCase() + item.status.slice(1)}</span></td>
                <td className="row-actions">
                  {canControl && (item.status === "scheduled" || item.status === "overdue") && (
                    <button type="button" className="secondary" onClick={() => setCompleting(item)}
                      aria-label={`Complete ${kindLabel(item.kind).toLowerCase()}${item.title ? ` ${item.title}` : ""}`}>
                      Complete…
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {completing && (
        <CompleteItem item={completing} onClose={() => setCompleting(null)} onDone={async () => { setCompleting(null); await refresh(); }} />
      )}
      {scheduling && (
        <ScheduleItem instrumentId={instrument.id} onClose={() => setScheduling(false)} onDone={async () => { setScheduling(false); await refresh(); }} />
      )}
    </section>
  );
}

function CompleteItem({ item, onClose, onDone }: { item: Item; onClose: () => void; onDone: () => Promise<void> }) {
  const calibration = item.kind === "calibration";
  const change = useMutation({
    mutationFn: (body: Schemas["MaintenanceUpdate"]) =>
      call(() =>
        api.PUT("/api/v1/maintenance/{id}", {
          params: { path: { id: item.id }, header: { "If-Match": `"${item.version}"` } },
          body,
        }),
      ),
    onSuccess: onDone,
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const v = values(event.currentTarget, ["notes", "standard", "certificate", "nextDueAt"]);
    const doc: Record<string, unknown> = {};
    if (v.standard) doc.standard = v.standard;
    if (v.certificate) doc.certificate = v.certificate;
    change.mutate({
      status: "completed",
      ...(v.notes ? { notes: v.notes } : {}),
      ...(calibration && Object.keys(doc).length > 0 ? { calibration: doc } : {}),
      ...(calibration && v.nextDueAt ? { nextDueAt: new Date(`${v.nextDueAt}T00:00`).toISOString() } : {}),
    });
  };
  const cancel = () => change.mutate({ status: "cancelled" });
  return (
    <Dialog title={`Complete the ${kindLabel(item.kind).toLowerCase()}`} onClose={onClose}>
      <form className="form" onSubmit={submit} noValidate>
        {calibration && (
          <>
            <Field name="standard" label="Reference standard" failure={change.error} maxLength={255} />
            <Field name="certificate" label="Certificate number" failure={change.error} maxLength={255} />
            <Field name="nextDueAt" label="Next calibration due" type="date" failure={change.error}
              hint="Leave empty for the instrument's calibration interval (365 days unless configured)." />
          </>
        )}
        <label htmlFor="notes">Notes</label>
        <textarea id="notes" name="notes" rows={3} maxLength={10_000} />
        {change.isError && <Problem error={change.error} title="The item was not changed" />}
        <div className="actions">
          <button type="button" className="secondary danger-text" onClick={cancel} disabled={change.isPending}>Cancel the item</button>
          <button type="button" className="secondary" onClick={onClose}>Close</button>
          <button type="submit" disabled={change.isPending}>{change.isPending ? "Saving…" : "Mark as completed"}</button>
        </div>
      </form>
    </Dialog>
  );
}

function ScheduleItem({ instrumentId, onClose, onDone }: { instrumentId: string; onClose: () => void; onDone: () => Promise<void> }) {
  const create = useMutation({
    mutationFn: (body: Schemas["MaintenanceInput"]) =>
      call(() => api.POST("/api/v1/instruments/{id}/maintenance", { params: { path: { id: instrumentId } }, body })),
    onSuccess: onDone,
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const v = values(event.currentTarget, ["kind", "title", "scheduledFor", "notes"]);
    create.mutate({
      kind: v.kind as Kind,
      scheduledFor: v.scheduledFor ? new Date(v.scheduledFor).toISOString() : "",
      ...(v.title ? { title: v.title } : {}),
      ...(v.notes ? { notes: v.notes } : {}),
    });
  };
  const tomorrow = localInput(new Date(Date.now() + 86_400_000).toISOString());
  return (
    <Dialog title="Schedule maintenance" onClose={onClose}>
      <form className="form" onSubmit={submit} noValidate>
        <label htmlFor="kind">Kind</label>
        <select id="kind" name="kind" defaultValue="calibration">
          {KINDS.map((k) => <option key={k.kind} value={k.kind}>{k.label}</option>)}
        </select>
        <Field name="title" label="Title (optional)" failure={create.error} maxLength={255} />
        <Field name="scheduledFor" label="Due" type="datetime-local" defaultValue={tomorrow} failure={create.error} />
        <label htmlFor="schedule-notes">Notes (optional)</label>
        <textarea id="schedule-notes" name="notes" rows={3} maxLength={10_000} />
        {create.isError && <Problem error={create.error} title="Nothing was scheduled" />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={create.isPending}>{create.isPending ? "Scheduling…" : "Schedule"}</button>
        </div>
      </form>
    </Dialog>
  );
}

import type { ReactNode } from "react";
import { Link } from "react-router";
import type { Schemas } from "../../api/client";
import { Dialog } from "../../ui/Dialog";
import { changes } from "./audit";
import { capital, recordLink } from "./AuditPage";

/** One event in full: what changed, who, from where, and its place on the chain. */
export function EventDetail({ event, who, onClose }: { event: Schemas["Listed"]; who: ReactNode; onClose: () => void }) {
  const changed = changes(event.oldValues, event.newValues);
  const link = recordLink(event);
  const metadata = event.metadata && typeof event.metadata === "object" && Object.keys(event.metadata).length > 0
    ? JSON.stringify(event.metadata, null, 2)
    : null;
  return (
    <Dialog title={`Event #${event.sequence}: ${event.eventType}`} onClose={onClose}>
      <dl className="facts">
        <dt>Action</dt><dd>{event.action}</dd>
        <dt>When</dt><dd><time dateTime={event.createdAt}>{new Date(event.createdAt).toLocaleString()}</time> <span className="muted small">({event.createdAt})</span></dd>
        <dt>By</dt><dd>{who}{event.userEmail && <span className="muted small"> · {event.userEmail}</span>}</dd>
        <dt>Outcome</dt><dd>{capital(event.outcome)}, severity {event.severity.toLowerCase()}</dd>
        {event.recordType && (
          <>
            <dt>Record</dt>
            <dd>
              {event.recordType.replace(/_/g, " ")} {event.recordId && (link ? <Link to={link}><code>{event.recordId}</code></Link> : <code>{event.recordId}</code>)}
            </dd>
          </>
        )}
        {event.reason && (<><dt>Reason</dt><dd>{event.reason}</dd></>)}
      </dl>
      {changed.length > 0 && (
        <>
          <h3 className="small-heading">What changed</h3>
          <table className="table changes">
            <thead><tr><th scope="col">Field</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
            <tbody>
              {changed.map((c) => (
                <tr key={c.field}><th scope="row"><code>{c.field}</code></th><td className="before">{c.before}</td><td className="after">{c.after}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h3 className="small-heading">Request</h3>
      <dl className="facts">
        <dt>Request id</dt><dd>{event.requestId ? <code>{event.requestId}</code> : <span className="muted">none</span>}</dd>
        <dt>Address</dt><dd>{event.ipAddress ?? <span className="muted">not recorded</span>}</dd>
        <dt>Client</dt><dd className="break">{event.userAgent ?? <span className="muted">not recorded</span>}</dd>
      </dl>
      <h3 className="small-heading">On the chain</h3>
      <dl className="facts">
        <dt>Position</dt><dd>#{event.sequence}</dd>
        <dt>Hash</dt><dd><code className="break">{event.hash}</code></dd>
        <dt>Signed with</dt><dd><code>{event.keyId}</code></dd>
      </dl>
      {metadata && (
        <>
          <h3 className="small-heading">Context</h3>
          <pre className="json" tabIndex={0} aria-label="The event's context, as JSON">{metadata}</pre>
        </>
      )}
      <div className="actions">
        <button type="button" onClick={onClose}>Close</button>
      </div>
    </Dialog>
  );
}

import { useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, call, type Schemas } from "../../api/client";
import { useCan, useMe } from "../../auth/useSession";
import { Problem } from "../../ui/Problem";
import { auditFilters, auditQuery, OUTCOMES, RECORD_TYPES, SEVERITIES, type AuditFilters } from "./audit";
import { EventDetail } from "./EventDetail";
import { ExportPanel } from "./ExportPanel";
import { VerifyPanel } from "./VerifyPanel";

type Event = Schemas["Listed"];

/** Where an event's record lives in the app, when it has a page. */
export function recordLink(event: Pick<Event, "recordType" | "recordId">): string | null {
  if (!event.recordId) return null;
  if (event.recordType === "run") return `/runs/${event.recordId}`;
  if (event.recordType === "instrument") return `/instruments/${event.recordId}`;
  return null;
}

/**
 * `/audit`: the organization's audit trail for QA and compliance: every
 * filter the API has (kept in the address), an event's full detail, the
 * chain verified in plain words, and a signed export.
 */
export function AuditPage() {
  const me = useMe();
  const canSeeUsers = useCan("users:manage");
  const [params, setParams] = useSearchParams();
  const filters = auditFilters(params);
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [open, setOpen] = useState<Event | null>(null);
  const [search, setSearch] = useState(filters.q);
  const [typed, setTyped] = useState(filters.eventType);

  const users = useQuery({
    queryKey: ["users"],
    queryFn: () => call(() => api.GET("/api/v1/users")),
    enabled: canSeeUsers,
    staleTime: 60_000,
  });
  const events = useQuery({
    queryKey: ["audit-events", filters, cursor],
    queryFn: () =>
      call(() => api.GET("/api/audit/events", { params: { query: { limit: 50, ...auditQuery(filters), ...(cursor ? { cursor } : {}) } } })),
    placeholderData: keepPreviousData,
  });

  const setFilter = (name: keyof AuditFilters, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setCursors([]);
    setParams(next, { replace: true });
  };
  const clear = () => {
    setCursors([]);
    setSearch("");
    setTyped("");
    setParams({}, { replace: true });
  };
  // The API names each event's user; the users list (for those who may
  // see it) only fills the user filter.
  const who = (event: Pick<Event, "userId" | "userName" | "userEmail">) => {
    if (!event.userId) return <span className="muted">the system</span>;
    if (event.userId === me.data?.id) return `${me.data.name} (you)`;
    if (event.userName) return <span title={event.userEmail ?? undefined}>{event.userName}</span>;
    return <span className="muted">a removed account (<code>{event.userId.slice(0, 8)}</code>)</span>;
  };
  // Whom the user filter can name: the users list, else the people on this page.
  const people = new Map<string, string>();
  for (const e of events.data?.items ?? []) if (e.userId && e.userName) people.set(e.userId, e.userName);
  for (const u of users.data?.items ?? []) people.set(u.id, u.name);
  if (me.data) people.delete(me.data.id);
  const filtered = Object.values(filters).some(Boolean);
  const seenTypes = [...new Set(events.data?.items.map((e) => e.eventType) ?? [])].sort();

  return (
    <section className="page" aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">Audit trail</h1>
      </div>
      <p className="muted">
        Every change and security event in the organization, in order, each signed and chained to the one before it (21 CFR Part 11).
      </p>
      <div className="two-columns">
        <VerifyPanel />
        <ExportPanel filters={filters} filtered={filtered} />
      </div>

      <form className="toolbar filters" aria-label="Filter events"
        onSubmit={(e) => { e.preventDefault(); setFilter("q", search.trim()); }}>
        <span className="filter">
          <label htmlFor="audit-q">Action contains</label>
          <input id="audit-q" type="search" value={search} maxLength={200} onChange={(e) => setSearch(e.target.value)}
            onBlur={() => search.trim() !== filters.q && setFilter("q", search.trim())} />
        </span>
        <span className="filter">
          <label htmlFor="audit-type">Event type</label>
          <input id="audit-type" list="audit-types" value={typed} spellCheck={false} size={22}
            aria-invalid={typed.trim() !== "" && !/^[A-Za-z0-9_]{1,100}$/.test(typed.trim()) ? true : undefined}
            onChange={(e) => {
              setTyped(e.target.value);
              // A complete name filters at once; a partial one waits.
              const name = e.target.value.trim();
              if (name === "" || /^[A-Za-z0-9_]{1,100}$/.test(name)) setFilter("eventType", name.toUpperCase());
            }} />
          <datalist id="audit-types">{seenTypes.map((t) => <option key={t} value={t} />)}</datalist>
        </span>
        <span className="filter">
          <label htmlFor="audit-severity">Severity</label>
          <select id="audit-severity" value={filters.severity} onChange={(e) => setFilter("severity", e.target.value)}>
            <option value="">Any</option>
            {SEVERITIES.map((s) => <option key={s} value={s}>{capital(s)}</option>)}
          </select>
        </span>
        <span className="filter">
          <label htmlFor="audit-outcome">Outcome</label>
          <select id="audit-outcome" value={filters.outcome} onChange={(e) => setFilter("outcome", e.target.value)}>
            <option value="">Any</option>
            {OUTCOMES.map((o) => <option key={o} value={o}>{capital(o)}</option>)}
          </select>
        </span>
        <span className="filter">
          <label htmlFor="audit-user">User</label>
          <select id="audit-user" value={filters.userId} onChange={(e) => setFilter("userId", e.target.value)}>
            <option value="">Anyone</option>
            {me.data && <option value={me.data.id}>Me</option>}
            {[...people].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => <option key={id} value={id}>{name}</option>)}
            {filters.userId && filters.userId !== me.data?.id && !people.has(filters.userId) && (
              <option value={filters.userId}>User {filters.userId.slice(0, 8)}</option>
            )}
          </select>
        </span>
        <span className="filter">
          <label htmlFor="audit-record-type">Record</label>
          <select id="audit-record-type" value={filters.recordType} onChange={(e) => setFilter("recordType", e.target.value)}>
            <option value="">Any kind</option>
            {RECORD_TYPES.map((r) => <option key={r} value={r}>{r.replace(/_/g, " ")}</option>)}
          </select>
        </span>
        {filters.recordId && (
          <span className="filter">
            <span className="badge tone-info">Record <code>{filters.recordId.slice(0, 8)}</code></span>
            <button type="button" className="link" onClick={() => setFilter("recordId", "")}>any record</button>
          </span>
        )}
        <span className="filter">
          <label htmlFor="audit-from">From</label>
          <input id="audit-from" type="date" value={filters.from} onChange={(e) => setFilter("from", e.target.value)} />
        </span>
        <span className="filter">
          <label htmlFor="audit-to">to</label>
          <input id="audit-to" type="date" value={filters.to} onChange={(e) => setFilter("to", e.target.value)} />
        </span>
        {filtered && <button type="button" className="secondary" onClick={clear}>Clear filters</button>}
      </form>

      {events.isPending && <p role="status">Loading the audit trail…</p>}
      {events.isError && <Problem error={events.error} title="The audit trail could not be loaded" />}
      {events.isSuccess && events.data.items.length === 0 && (
        <div className="empty"><p>{filtered ? "No event matches these filters." : "The audit trail has no events yet."}</p></div>
      )}
      {events.isSuccess && events.data.items.length > 0 && (
        <div className="scroll">
          <table className="table audit" aria-busy={events.isFetching}>
            <caption className="visually-hidden">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">#</th><th scope="col">When</th><th scope="col">Event</th><th scope="col">Action</th>
                <th scope="col">By</th><th scope="col">Outcome</th><th scope="col">Record</th>
              </tr>
            </thead>
            <tbody>
              {events.data.items.map((event) => {
                const link = recordLink(event);
                return (
                  <tr key={event.id} data-event={event.eventType}>
                    <td className="num">{event.sequence}</td>
                    <td><time dateTime={event.createdAt}>{new Date(event.createdAt).toLocaleString()}</time></td>
                    <td>
                      <button type="button" className="link mono" onClick={() => setOpen(event)}
                        aria-label={`Details of event ${event.sequence}, ${event.eventType}`}>{event.eventType}</button>
                      {event.severity !== "INFO" && <span className={`badge severity-${event.severity.toLowerCase()}`}>{capital(event.severity)}</span>}
                    </td>
                    <td>{event.action}{event.reason && <div className="muted small">Reason: {event.reason}</div>}</td>
                    <td>{who(event)}</td>
                    <td><span className={`badge outcome-${event.outcome.toLowerCase()}`}>{capital(event.outcome)}</span></td>
                    <td>
                      {event.recordType ? (
                        <>
                          {link ? <Link to={link}>{event.recordType.replace(/_/g, " ")}</Link> : event.recordType.replace(/_/g, " ")}
                          {event.recordId && (
                            <button type="button" className="link small" onClick={() => setFilter("recordId", event.recordId!)}
                              aria-label={`Its events: only those about this ${event.recordType.replace(/_/g, " ")}`}>its events</button>
                          )}
                        </>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {events.isSuccess && (cursors.length > 0 || events.data.nextCursor) && (
        <nav className="pager" aria-label="Pages of events">
          <button type="button" className="secondary" disabled={cursors.length === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>Newer</button>
          <span className="muted">Page {cursors.length + 1}</span>
          <button type="button" className="secondary" disabled={!events.data.nextCursor}
            onClick={() => events.data.nextCursor && setCursors((c) => [...c, events.data.nextCursor!])}>Older</button>
        </nav>
      )}
      {open && <EventDetail event={open} who={who(open)} onClose={() => setOpen(null)} />}
    </section>
  );
}

/** "WARNING" or "warning" as a word: "Warning". */
export function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase();
}

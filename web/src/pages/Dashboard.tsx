import { useEffect, useMemo, useState } from "react";
import { useQueries, useQuery } from "@tanstack/react-query";
import { api, call, type Schemas } from "../api/client";
import { Link, useMatch, useNavigate } from "react-router";
import { NotPermitted } from "../auth/RequirePermission";
import { useMe } from "../auth/useSession";
import { connectLive, type LiveMessage, type LiveReading, type LiveState } from "../live/socket";
import { Problem } from "../ui/Problem";
import { AddInstrument } from "./AddInstrument";
import { dueBadge, metricLabel, relativeTime, statusLabel } from "./format";

type Instrument = Schemas["Instrument"];
type Status = Schemas["InstrumentStatusDetail"];

/** How often statuses are read again when no live socket brings them. */
export const POLL_MS = 15_000;

interface LiveView {
  status?: string;
  readings: Record<string, LiveReading>;
}

/**
 * `/` and `/instruments/new` (the add dialog open over it: one mounted
 * page, so the live socket and filters survive opening the dialog).
 */
export function Dashboard() {
  const me = useMe();
  const canManage = me.data?.permissions.includes("instruments:manage") ?? false;
  const adding = useMatch("/instruments/new") !== null;
  const navigate = useNavigate();
  const [filter, setFilter] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [kind, setKind] = useState("");
  const [location, setLocation] = useState("");
  const [view, setView] = useState<"grid" | "list">("grid");
  const [live, setLive] = useState<{ state: LiveState; since: Date }>({ state: "connecting", since: new Date() });
  const [pushed, setPushed] = useState<Record<string, LiveView>>({});

  const health = useQuery({
    queryKey: ["health"],
    queryFn: () => call(() => api.GET("/api/health")),
    staleTime: 300_000,
  });
  const liveAvailable = health.data ? health.data.liveUpdates : undefined;

  useEffect(() => {
    if (liveAvailable === undefined) return;
    return connectLive({
      available: liveAvailable,
      onState: (state, since) => setLive({ state, since }),
      onMessage: (message: LiveMessage) => setPushed((current) => merge(current, message)),
    });
  }, [liveAvailable]);

  const types = useQuery({
    queryKey: ["instrument-types"],
    queryFn: () => call(() => api.GET("/api/v1/instrument-types")),
    staleTime: Infinity,
  });
  const typeLabel = (kind: string) => types.data?.items.find((t) => t.type === kind)?.label ?? kind;

  const instruments = useQuery({
    queryKey: ["instruments", "all"],
    queryFn: () => call(() => api.GET("/api/v1/instruments", { params: { query: { limit: 100 } } })),
    refetchInterval: live.state === "live" ? false : POLL_MS,
  });
  const items = useMemo(() => instruments.data?.items ?? [], [instruments.data]);

  const statuses = useQueries({
    queries: items.map((instrument) => ({
      queryKey: ["instrument-status", instrument.id],
      queryFn: () =>
        call(() => api.GET("/api/v1/instruments/{id}/status", { params: { path: { id: instrument.id } } })),
      refetchInterval: live.state === "live" ? false : POLL_MS,
    })),
  });
  const statusOf = new Map<string, Status>();
  statuses.forEach((q, i) => {
    const id = items[i]?.id;
    if (id && q.data) statusOf.set(id, q.data);
  });

  const current = (instrument: Instrument) => pushed[instrument.id]?.status ?? statusOf.get(instrument.id)?.status ?? instrument.status;

  const counts = new Map<string, number>();
  for (const instrument of items) counts.set(current(instrument), (counts.get(current(instrument)) ?? 0) + 1);
  const kinds = [...new Set(items.map((i) => i.type))].sort();
  const locations = [...new Set(items.map((i) => i.location).filter((l): l is string => !!l))].sort();

  const needle = search.trim().toLowerCase();
  const shown = items.filter(
    (i) =>
      (filter === null || current(i) === filter) &&
      (kind === "" || i.type === kind) &&
      (location === "" || i.location === location) &&
      (needle === "" ||
        [i.name, i.model, i.serialNumber, i.location].some((v) => v?.toLowerCase().includes(needle))),
  );

  if (adding && me.data && !canManage) {
    return <NotPermitted permission="instruments:manage" role={me.data.role} />;
  }

  return (
    <section className="page" aria-labelledby="dashboard-title">
      <div className="page-head">
        <h1 id="dashboard-title">Instruments</h1>
        <LiveBadge state={live.state} since={live.since} />
        {canManage && (
          <button type="button" onClick={() => navigate("/instruments/new")}>Add instrument</button>
        )}
        {canManage && <AddInstrument open={adding} onClose={() => navigate("/", { replace: true })} />}
      </div>

      {instruments.isPending && <p role="status">Loading instruments…</p>}
      {instruments.isError && <Problem error={instruments.error} title="The instruments could not be loaded" />}

      {instruments.isSuccess && (
        <>
          <div className="counts" role="group" aria-label="Filter by status">
            <button type="button" aria-pressed={filter === null} onClick={() => setFilter(null)}>
              All <span className="count">{items.length}</span>
            </button>
            {[...counts.entries()].sort().map(([status, count]) => (
              <button key={status} type="button" aria-pressed={filter === status} className={`status-${status}`}
                onClick={() => setFilter(filter === status ? null : status)}>
                {statusLabel(status)} <span className="count">{count}</span>
              </button>
            ))}
          </div>

          <div className="toolbar">
            <label>
              <span className="visually-hidden">Search</span>
              <input type="search" placeholder="Search name, model, serial, location" value={search}
                onChange={(e) => setSearch(e.target.value)} />
            </label>
            <label>
              Type{" "}
              <select value={kind} onChange={(e) => setKind(e.target.value)}>
                <option value="">All types</option>
                {kinds.map((t) => <option key={t} value={t}>{typeLabel(t)}</option>)}
              </select>
            </label>
            <label>
              Location{" "}
              <select value={location} onChange={(e) => setLocation(e.target.value)}>
                <option value="">All locations</option>
                {locations.map((l) => <option key={l} value={l}>{l}</option>)}
              </select>
            </label>
            <div className="segmented" role="group" aria-label="View">
              <button type="button" aria-pressed={view === "grid"} onClick={() => setView("grid")}>Grid</button>
              <button type="button" aria-pressed={view === "list"} onClick={() => setView("list")}>List</button>
            </div>
          </div>

          {items.length === 0 && (
            <div className="empty">
              <p>No instruments yet.</p>
              {canManage ? <p>Add the first one, or enroll a bridge that reports them.</p> : <p>Ask a lab manager to add them.</p>}
            </div>
          )}
          {items.length > 0 && shown.length === 0 && <p className="empty">No instrument matches these filters.</p>}

          <ul className={view === "grid" ? "cards" : "rows"} aria-label="Instruments">
            {shown.map((instrument) => (
              <InstrumentCard key={instrument.id} instrument={instrument} status={statusOf.get(instrument.id)} typeLabel={typeLabel(instrument.type)}
                live={pushed[instrument.id]} current={current(instrument)} />
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function InstrumentCard({ instrument, status, live, current, typeLabel }: {
  instrument: Instrument;
  typeLabel: string;
  status: Status | undefined;
  live: LiveView | undefined;
  current: string;
}) {
  const readings: Record<string, { value: number; unit?: string | null; recordedAt: string }> = {};
  for (const [metric, latest] of Object.entries(status?.readings ?? {})) readings[metric] = latest;
  // A pushed reading replaces the polled one only when it is newer.
  for (const [metric, reading] of Object.entries(live?.readings ?? ({} as Record<string, LiveReading>))) {
    const polled = readings[metric];
    if (!polled || Date.parse(polled.recordedAt) <= Date.parse(reading.recordedAt)) readings[metric] = reading;
  }
  const calibration = dueBadge(status?.calibrationDueAt ?? instrument.calibrationDueAt, status?.calibrationOverdue ?? false, "Calibration");
  const maintenance = status && status.overdueMaintenance > 0
    ? { label: `Maintenance overdue (${status.overdueMaintenance})`, tone: "bad" as const }
    : dueBadge(status?.nextMaintenanceAt, false, "Maintenance");
  return (
    <li className="card" data-instrument={instrument.id}>
      <div className="card-head">
        <h2><Link to={`/instruments/${instrument.id}`}>{instrument.name}</Link></h2>
        <span className={`badge status-${current}`}>{statusLabel(current)}</span>
      </div>
      <p className="muted small">
        {typeLabel}
        {instrument.location ? ` · ${instrument.location}` : ""}
        {instrument.model ? ` · ${instrument.model}` : ""}
      </p>
      {Object.keys(readings).length === 0 && <p className="muted small">No readings in the last hour.</p>}
      <dl className="readings" aria-label={`Latest readings of ${instrument.name}`}>
        {Object.entries(readings).sort(([a], [b]) => a.localeCompare(b)).map(([metric, r]) => (
          <div key={metric} className="reading" data-metric={metric}>
            <dt title={metric}>{metricLabel(metric)}</dt>
            <dd>
              <span className="value">{formatValue(r.value)}</span>
              {r.unit && <span className="unit"> {r.unit}</span>}
              <time className="muted" dateTime={r.recordedAt}>{relativeTime(r.recordedAt)}</time>
            </dd>
          </div>
        ))}
      </dl>
      <div className="badges">
        {status && !status.reachable && <span className="badge tone-warn">Not reachable</span>}
        {status?.activeRun && <span className="badge tone-info">Run: {status.activeRun.name ?? "unnamed"}</span>}
        {calibration && <span className={`badge tone-${calibration.tone}`}>{calibration.label}</span>}
        {maintenance && <span className={`badge tone-${maintenance.tone}`}>{maintenance.label}</span>}
      </div>
      <p className="muted small">
        Last heard {status?.lastSeenAt ?? instrument.lastSeenAt ? relativeTime((status?.lastSeenAt ?? instrument.lastSeenAt)!) : "never"}
      </p>
    </li>
  );
}

export function LiveBadge({ state, since }: { state: LiveState; since: Date }) {
  const text = {
    connecting: "Connecting to live updates…",
    live: "Live",
    down: `Live updates lost at ${since.toLocaleTimeString()}: data may be stale. Reconnecting…`,
    unavailable: `Live updates are unavailable on this deployment; refreshing every ${POLL_MS / 1000} s.`,
  }[state];
  return (
    <p className={`live live-${state}`} role="status" aria-live="polite" data-live-state={state}>
      <span className="dot" aria-hidden="true" />
      {text}
    </p>
  );
}

function formatValue(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 2);
}

/** Folds one live message into what the dashboard shows. */
export function merge(current: Record<string, LiveView>, message: LiveMessage): Record<string, LiveView> {
  switch (message.type) {
    case "readings": {
      const view = current[message.instrumentId] ?? { readings: {} };
      const readings = { ...view.readings };
      for (const reading of message.readings) {
        const before = readings[reading.metric];
        if (!before || Date.parse(before.recordedAt) <= Date.parse(reading.recordedAt)) readings[reading.metric] = reading;
      }
      return { ...current, [message.instrumentId]: { ...view, readings } };
    }
    case "status": {
      const view = current[message.instrumentId] ?? { readings: {} };
      return { ...current, [message.instrumentId]: { ...view, status: message.status } };
    }
    case "subscribed": {
      const next = { ...current };
      for (const instrument of message.instruments) {
        next[instrument.id] = { ...(next[instrument.id] ?? { readings: {} }), status: instrument.status };
      }
      return next;
    }
    default:
      return current;
  }
}

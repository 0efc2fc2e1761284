import { useEffect, useMemo, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, call, type Schemas } from "../../api/client";
import { connectLive, type LiveMessage, type LiveState } from "../../live/socket";
import { Problem } from "../../ui/Problem";
import { LiveBadge, POLL_MS } from "../Dashboard";
import { metricLabel, statusLabel } from "../format";
import { appendLive, columns, limitsFor, RANGES, type LiveReading } from "../instrument/chart";
import { ReadingsChart } from "../instrument/ReadingsChart";
import { BridgeTable } from "../admin/BridgeTable";

type Instrument = Schemas["Instrument"];

/** At most this many charts side by side. */
export const MAX_CHARTS = 6;

/** The instruments to chart: those in `?show=` (that exist), else the first few that are on. */
export function chosen(param: string | null, instruments: Instrument[]): string[] {
  const known = new Set(instruments.map((i) => i.id));
  const asked = (param ?? "").split(",").filter((id) => known.has(id));
  if (param !== null) return asked.slice(0, MAX_CHARTS);
  return instruments.filter((i) => i.status !== "offline").slice(0, 4).map((i) => i.id);
}

/**
 * `/monitoring`: the lab at a glance for whoever watches it: several
 * instruments' live charts side by side (chosen here, kept in the
 * address), the bridges' health, and the system's.
 */
export function MonitoringPage() {
  const [params, setParams] = useSearchParams();
  const [live, setLive] = useState<{ state: LiveState; since: Date }>({ state: "connecting", since: new Date() });
  const [readings, setReadings] = useState<Record<string, Record<string, LiveReading[]>>>({});
  const health = useQuery({ queryKey: ["health"], queryFn: () => call(() => api.GET("/api/health")), refetchInterval: 30_000 });
  const instruments = useQuery({
    queryKey: ["instruments", "all"],
    queryFn: () => call(() => api.GET("/api/v1/instruments", { params: { query: { limit: 100 } } })),
  });
  const bridges = useQuery({ queryKey: ["bridges"], queryFn: () => call(() => api.GET("/api/v1/bridges")), refetchInterval: 15_000 });
  const types = useQuery({ queryKey: ["instrument-types"], queryFn: () => call(() => api.GET("/api/v1/instrument-types")), staleTime: Infinity });

  const all = useMemo(() => (instruments.data?.items ?? []).filter((i) => !i.deletedAt), [instruments.data]);
  // The choice, as the address holds it; kept here too so that a box
  // shows its new state at once (the router applies the address later).
  const [choice, setChoice] = useState<string | null>(() => params.get("show"));
  const shown = chosen(choice, all);
  const shownKey = shown.join(",");
  const liveAvailable = health.data?.liveUpdates;

  useEffect(() => {
    if (liveAvailable === undefined || shownKey === "") return;
    return connectLive({
      available: liveAvailable,
      instrumentIds: shownKey.split(","),
      onState: (state, since) => setLive({ state, since }),
      onMessage: (message: LiveMessage) => {
        if (message.type !== "readings") return;
        setReadings((current) => ({ ...current, [message.instrumentId]: appendLive(current[message.instrumentId] ?? {}, message.readings) }));
      },
    });
  }, [liveAvailable, shownKey]);

  const toggle = (id: string, on: boolean) => {
    const next = (on ? [...shown, id].slice(0, MAX_CHARTS) : shown.filter((x) => x !== id)).join(",");
    setChoice(next);
    setParams({ show: next }, { replace: true });
  };
  const polling = live.state !== "live";

  return (
    <section className="page" aria-labelledby="monitoring-title">
      <div className="page-head">
        <h1 id="monitoring-title">Monitoring</h1>
        {shown.length > 0 && <LiveBadge state={live.state} since={live.since} />}
      </div>

      <div className="two-columns">
        <section className="panel" aria-labelledby="system-title">
          <h2 id="system-title">System</h2>
          {health.isPending && <p role="status">Checking the system…</p>}
          {health.isError && <Problem error={health.error} title="The system did not answer its health check" />}
          {health.data && (
            <dl className="facts">
              <dt>API</dt>
              <dd><span className={`badge ${health.data.status === "ok" ? "status-online" : "status-error"}`} data-health={health.data.status}>
                {health.data.status === "ok" ? "Working" : health.data.status}</span></dd>
              <dt>Database</dt>
              <dd><span className={`badge ${health.data.database === "reachable" ? "status-online" : "status-error"}`}>
                {health.data.database === "reachable" ? "Reachable" : health.data.database}</span></dd>
              <dt>Live updates</dt><dd>{health.data.liveUpdates ? "Pushed over a live socket" : `Not on this deployment: pages refresh every ${POLL_MS / 1000} s`}</dd>
              <dt>Version</dt><dd><code>{health.data.version}</code></dd>
              <dt>Checked</dt><dd>{new Date(health.dataUpdatedAt).toLocaleTimeString()}</dd>
            </dl>
          )}
        </section>
        <section className="panel" aria-labelledby="monitor-bridges-title">
          <div className="panel-head">
            <h2 id="monitor-bridges-title">Bridges</h2>
            {bridges.data && <span className="muted">{bridges.data.items.filter((b) => b.online).length} of {bridges.data.items.length} online</span>}
          </div>
          {bridges.isPending && <p role="status">Loading bridges…</p>}
          {bridges.isError && <Problem error={bridges.error} title="The bridges could not be loaded" />}
          {bridges.data && bridges.data.items.length === 0 && <p className="muted">No bridge is enrolled.</p>}
          {bridges.data && bridges.data.items.length > 0 && <BridgeTable bridges={bridges.data.items} instruments={all} compact />}
        </section>
      </div>

      <section className="panel" aria-labelledby="charts-title">
        <div className="panel-head">
          <h2 id="charts-title">Instruments, last hour</h2>
        </div>
        {instruments.isPending && <p role="status">Loading instruments…</p>}
        {instruments.isError && <Problem error={instruments.error} title="The instruments could not be loaded" />}
        {instruments.isSuccess && all.length === 0 && <p className="muted">No instrument is registered yet.</p>}
        {all.length > 0 && (
          <fieldset className="choose">
            <legend>Show (up to {MAX_CHARTS})</legend>
            {all.map((i) => (
              <span className="check" key={i.id}>
                <label htmlFor={`show-${i.id}`}>{i.name} <span className="muted small">({statusLabel(i.status)})</span></label>
                <input id={`show-${i.id}`} type="checkbox" checked={shown.includes(i.id)}
                  disabled={!shown.includes(i.id) && shown.length >= MAX_CHARTS} onChange={(e) => toggle(i.id, e.target.checked)} />
              </span>
            ))}
          </fieldset>
        )}
        {instruments.isSuccess && all.length > 0 && shown.length === 0 && <p className="muted">Choose instruments to chart.</p>}
        <div className="charts">
          {shown.map((id) => {
            const instrument = all.find((i) => i.id === id);
            if (!instrument) return null;
            return (
              <MonitorChart key={id} instrument={instrument} live={readings[id] ?? {}} polling={polling}
                schema={types.data?.items.find((t) => t.type === instrument.type)?.configuration}
                onPolled={(latest) => setReadings((current) => ({ ...current, [id]: appendLive(current[id] ?? {}, latest) }))} />
            );
          })}
        </div>
      </section>
    </section>
  );
}

/** One instrument's chart: a metric of it (chosen here) over the last hour, with its live readings and limits. */
function MonitorChart({ instrument, live, polling, schema, onPolled }: {
  instrument: Instrument;
  live: Record<string, LiveReading[]>;
  polling: boolean;
  schema: unknown;
  onPolled: (latest: LiveReading[]) => void;
}) {
  const history = useQuery({
    queryKey: ["readings", instrument.id, "hour"],
    queryFn: () => {
      const now = Date.now();
      return call(() =>
        api.GET("/api/v1/instruments/{id}/readings", {
          params: {
            path: { id: instrument.id },
            query: { from: new Date(now - RANGES.hour.seconds * 1000).toISOString(), to: new Date(now + 60_000).toISOString(), bucket: RANGES.hour.bucket },
          },
        }),
      );
    },
    refetchInterval: 60_000,
  });
  // Without the live socket, the polled status brings each metric's latest reading.
  const status = useQuery({
    queryKey: ["instrument-status", instrument.id],
    queryFn: () => call(() => api.GET("/api/v1/instruments/{id}/status", { params: { path: { id: instrument.id } } })),
    refetchInterval: polling ? POLL_MS : 60_000,
  });
  useEffect(() => {
    if (!polling || !status.data) return;
    const latest = Object.entries(status.data.readings).map(([metric, r]) => ({ metric, ...r }));
    if (latest.length > 0) onPolled(latest);
    // Once per polled answer: `onPolled` is a new function every render.
  }, [status.data, polling]);
  const metrics = useMemo(() => {
    const names = new Set<string>();
    for (const s of history.data?.series ?? []) names.add(s.metric);
    for (const m of Object.keys(live)) names.add(m);
    return [...names].sort();
  }, [history.data, live]);
  const [picked, setPicked] = useState<string | null>(null);
  // Unless chosen: the first metric the instrument has limits for (a
  // freezer's temperature), else the first.
  const watched = metrics.find((m) => limitsFor(schema, instrument.configuration, m).length > 0);
  const metric = picked && metrics.includes(picked) ? picked : watched ?? metrics[0];
  const series = history.data?.series.find((s) => s.metric === metric);
  const limits = metric ? limitsFor(schema, instrument.configuration, metric) : [];
  const current = status.data?.status ?? instrument.status;
  return (
    <div className="monitor" data-monitor={instrument.name}>
      <div className="monitor-head">
        <h3><Link to={`/instruments/${instrument.id}`}>{instrument.name}</Link></h3>
        <span className={`badge status-${current}`}>{statusLabel(current)}</span>
        {metrics.length > 1 && (
          <span className="filter">
            <label htmlFor={`metric-${instrument.id}`} className="visually-hidden">Metric of {instrument.name}</label>
            <select id={`metric-${instrument.id}`} value={metric} onChange={(e) => setPicked(e.target.value)}>
              {metrics.map((m) => <option key={m} value={m}>{metricLabel(m)}</option>)}
            </select>
          </span>
        )}
      </div>
      {history.isPending && <p role="status">Loading readings…</p>}
      {history.isError && <Problem error={history.error} title={`${instrument.name}'s readings could not be loaded`} />}
      {history.isSuccess && !metric && <p className="empty">No readings in the last hour.</p>}
      {history.isSuccess && metric && (
        <ReadingsChart key={metric} title={metricLabel(metric)} unit={series?.unit ?? live[metric]?.[0]?.unit} limits={limits}
          data={columns(series, live[metric] ?? [], limits)} rangeLabel={RANGES.hour.label} />
      )}
    </div>
  );
}

import { useEffect, useMemo, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { api, ApiFailure, call, type Schemas } from "../../api/client";
import { useCan } from "../../auth/useSession";
import { connectLive, type LiveMessage, type LiveState } from "../../live/socket";
import { Dialog } from "../../ui/Dialog";
import { Problem } from "../../ui/Problem";
import { POLL_MS, LiveBadge } from "../Dashboard";
import { metricLabel, relativeTime, statusLabel } from "../format";
import { appendLive, columns, limitsFor, RANGES, type LiveReading, type RangeName } from "./chart";
import { Commands } from "./Commands";
import { EditInstrument } from "./EditInstrument";
import { Maintenance } from "./Maintenance";
import { ReadingsChart } from "./ReadingsChart";

/**
 * `/instruments/:id`: one instrument — what it is doing (status,
 * reachability, its bridge, its run), a chart per metric over the last
 * hour, day or week with its live readings and its own limits, its
 * commands, its calibration and maintenance; editing and removing it.
 */
export function InstrumentPage() {
  const { id = "" } = useParams();
  // A page of its own per instrument: nothing of the last one's live state carries over.
  return <Instrument key={id} id={id} />;
}

function Instrument({ id }: { id: string }) {
  const canManage = useCan("instruments:manage");
  const canControl = useCan("instruments:control");
  const [live, setLive] = useState<{ state: LiveState; since: Date }>({ state: "connecting", since: new Date() });
  const [pushedStatus, setPushedStatus] = useState<string | null>(null);
  const [liveReadings, setLiveReadings] = useState<Record<string, LiveReading[]>>({});
  const [range, setRange] = useState<RangeName>("hour");
  const [editing, setEditing] = useState(false);
  const [removing, setRemoving] = useState(false);

  const instrument = useQuery({
    queryKey: ["instrument", id],
    queryFn: () => call(() => api.GET("/api/v1/instruments/{id}", { params: { path: { id } } })),
  });
  const status = useQuery({
    queryKey: ["instrument-status", id],
    queryFn: () => call(() => api.GET("/api/v1/instruments/{id}/status", { params: { path: { id } } })),
    refetchInterval: live.state === "live" ? 60_000 : POLL_MS,
  });
  const types = useQuery({
    queryKey: ["instrument-types"],
    queryFn: () => call(() => api.GET("/api/v1/instrument-types")),
    staleTime: Infinity,
  });
  const health = useQuery({
    queryKey: ["health"],
    queryFn: () => call(() => api.GET("/api/health")),
    staleTime: 300_000,
  });
  const bridges = useQuery({
    queryKey: ["bridges"],
    queryFn: () => call(() => api.GET("/api/v1/bridges")),
    enabled: !!instrument.data?.bridgeId,
    staleTime: 30_000,
  });

  // The history of the range, read again every minute for the hour (the
  // live readings fill the gap in between), every ten for longer ranges.
  const history = useQuery({
    queryKey: ["readings", id, range],
    queryFn: () => {
      const now = Date.now();
      return call(() =>
        api.GET("/api/v1/instruments/{id}/readings", {
          params: {
            path: { id },
            query: {
              from: new Date(now - RANGES[range].seconds * 1000).toISOString(),
              to: new Date(now + 60_000).toISOString(),
              bucket: RANGES[range].bucket,
            },
          },
        }),
      );
    },
    refetchInterval: range === "hour" ? 60_000 : 600_000,
  });

  const liveAvailable = health.data ? health.data.liveUpdates : undefined;
  useEffect(() => {
    if (liveAvailable === undefined || !id) return;
    return connectLive({
      available: liveAvailable,
      instrumentIds: [id],
      onState: (state, since) => setLive({ state, since }),
      onMessage: (message: LiveMessage) => {
        if (message.type === "readings" && message.instrumentId === id) setLiveReadings((current) => appendLive(current, message.readings));
        if (message.type === "status" && message.instrumentId === id) setPushedStatus(message.status);
        if (message.type === "subscribed") setPushedStatus(message.instruments.find((i) => i.id === id)?.status ?? null);
      },
    });
  }, [liveAvailable, id]);

  // A status read from the API is newer than the last one pushed (the hub
  // pushes changes only): it replaces it.
  useEffect(() => setPushedStatus(null), [status.dataUpdatedAt, instrument.dataUpdatedAt]);

  // Without the live socket (Spin), each polled status brings the latest reading of each metric.
  useEffect(() => {
    if (live.state === "live" || !status.data) return;
    const latest = Object.entries(status.data.readings).map(([metric, r]) => ({ metric, ...r }));
    if (latest.length > 0) setLiveReadings((current) => appendLive(current, latest));
  }, [status.data, live.state]);

  const type = types.data?.items.find((t) => t.type === instrument.data?.type);
  const metrics = useMemo(() => {
    const names = new Set<string>();
    for (const series of history.data?.series ?? []) names.add(series.metric);
    for (const metric of Object.keys(liveReadings)) names.add(metric);
    for (const metric of Object.keys(status.data?.readings ?? {})) names.add(metric);
    return [...names].sort();
  }, [history.data, liveReadings, status.data]);

  if (instrument.isPending) return <p role="status">Loading the instrument…</p>;
  if (instrument.isError) {
    return (
      <section className="page narrow" aria-labelledby="instrument-missing">
        <h1 id="instrument-missing">Instrument</h1>
        <Problem error={instrument.error} title="This instrument could not be loaded" />
        <p><Link to="/">Back to the instruments</Link></p>
      </section>
    );
  }
  const it = instrument.data;
  const current = pushedStatus ?? status.data?.status ?? it.status;
  const bridge = bridges.data?.items.find((b) => b.id === it.bridgeId);
  const lastSeen = status.data?.lastSeenAt ?? it.lastSeenAt;

  return (
    <section className="page" aria-labelledby="instrument-title">
      <p className="crumbs"><Link to="/">Instruments</Link> <span aria-hidden="true">›</span> {it.name}</p>
      <div className="page-head">
        <h1 id="instrument-title">{it.name}</h1>
        <span className={`badge status-${current}`} data-status={current}>{statusLabel(current)}</span>
        {status.data && !status.data.reachable && !it.deletedAt && <span className="badge tone-warn">Not reachable</span>}
        <LiveBadge state={live.state} since={live.since} />
        <div className="head-actions">
          {canManage && !it.deletedAt && <button type="button" className="secondary" onClick={() => setEditing(true)}>Edit…</button>}
          {canManage && !it.deletedAt && <button type="button" className="secondary danger-text" onClick={() => setRemoving(true)}>Remove…</button>}
        </div>
      </div>
      {it.deletedAt && (
        <p className="notice" role="status">
          Removed from service on {new Date(it.deletedAt).toLocaleString()}. Its history stays readable.
        </p>
      )}

      <dl className="facts wide">
        <dt>Type</dt><dd>{type?.label ?? it.type}</dd>
        {it.location && (<><dt>Location</dt><dd>{it.location}</dd></>)}
        {it.model && (<><dt>Model</dt><dd>{it.model}</dd></>)}
        {it.serialNumber && (<><dt>Serial number</dt><dd>{it.serialNumber}</dd></>)}
        {it.firmware && (<><dt>Firmware</dt><dd>{it.firmware}</dd></>)}
        <dt>Last heard</dt><dd>{lastSeen ? relativeTime(lastSeen) : "never"}</dd>
        <dt>Bridge</dt>
        <dd>
          {!it.bridgeId ? "None yet" : bridge ? (
            <>{bridge.name}{bridge.hostname ? ` on ${bridge.hostname}` : ""} · {bridge.online ? "online" : "offline"}
              {bridge.queueDepth ? ` · ${bridge.queueDepth} records queued` : ""}</>
          ) : <code className="small">{it.bridgeId}</code>}
        </dd>
        {status.data?.activeRun && (
          <><dt>Run</dt><dd>{status.data.activeRun.name ?? "Unnamed run"} ({statusLabel(status.data.activeRun.status)})</dd></>
        )}
        {!!status.data?.pendingCommands && (<><dt>Commands waiting</dt><dd>{status.data.pendingCommands}</dd></>)}
      </dl>

      <section className="panel" aria-labelledby="readings-title">
        <div className="panel-head">
          <h2 id="readings-title">Readings</h2>
          <div className="segmented" role="group" aria-label="Time range">
            {(Object.keys(RANGES) as RangeName[]).map((name) => (
              <button key={name} type="button" aria-pressed={range === name} onClick={() => setRange(name)}>{RANGES[name].label}</button>
            ))}
          </div>
        </div>
        <p className="muted small">Drag across a chart to zoom in; double-click it to see the whole range again.</p>
        {history.isPending && <p role="status">Loading readings…</p>}
        {history.isError && <Problem error={history.error} title="The readings could not be loaded" />}
        {history.isSuccess && metrics.length === 0 && (
          <p className="empty">No readings in the {RANGES[range].label.toLowerCase()}.</p>
        )}
        <div className="charts">
          {history.isSuccess && metrics.map((metric) => {
            const series = history.data.series.find((s) => s.metric === metric);
            const limits = limitsFor(type?.configuration, it.configuration, metric);
            const unit = series?.unit ?? liveReadings[metric]?.[0]?.unit ?? status.data?.readings[metric]?.unit;
            return (
              <ReadingsChart key={`${metric}-${range}`} title={metricLabel(metric)} unit={unit} limits={limits}
                data={columns(series, liveReadings[metric] ?? [], limits)} rangeLabel={RANGES[range].label} />
            );
          })}
        </div>
      </section>

      <div className="two-columns">
        <Commands instrument={it} status={current} commands={type?.commands ?? []} canControl={canControl} />
        <Maintenance instrument={it} canControl={canControl} canManage={canManage} />
      </div>

      {editing && type && <EditInstrument instrument={it} schema={type.configuration} onClose={() => setEditing(false)} />}
      {removing && <RemoveInstrument instrument={it} onClose={() => setRemoving(false)} />}
    </section>
  );
}

function RemoveInstrument({ instrument, onClose }: { instrument: Schemas["Instrument"]; onClose: () => void }) {
  const client = useQueryClient();
  const remove = useMutation({
    mutationFn: (reason: string) =>
      call(() => api.DELETE("/api/v1/instruments/{id}", { params: { path: { id: instrument.id } }, body: { reason } })),
    onSuccess: (removed) => {
      client.setQueryData(["instrument", instrument.id], removed);
      void client.invalidateQueries({ queryKey: ["instruments"] });
      void client.invalidateQueries({ queryKey: ["instrument-status", instrument.id] });
      onClose();
    },
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    remove.mutate(String(new FormData(event.currentTarget).get("reason") ?? "").trim());
  };
  const error = remove.error instanceof ApiFailure ? remove.error.forField("reason") : undefined;
  return (
    <Dialog title={`Remove ${instrument.name} from service?`} onClose={onClose}
      description={<p>It stops taking commands and runs. Its readings, runs and audit trail stay readable. The reason is kept in the audit trail.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <label htmlFor="remove-reason">Reason</label>
        <textarea id="remove-reason" name="reason" rows={3} maxLength={1000} required
          aria-invalid={error ? true : undefined} aria-describedby={error ? "remove-reason-error" : undefined} />
        {error && <p id="remove-reason-error" className="field-error">{error}</p>}
        {remove.isError && !error && <Problem error={remove.error} title="The instrument was not removed" />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Keep it</button>
          <button type="submit" className="danger" disabled={remove.isPending}>{remove.isPending ? "Removing…" : "Remove"}</button>
        </div>
      </form>
    </Dialog>
  );
}

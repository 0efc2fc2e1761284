import { useState, type FormEvent } from "react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, ApiFailure, call, type Schemas } from "../../api/client";
import { useCan, useMe } from "../../auth/useSession";
import { Dialog } from "../../ui/Dialog";
import { Problem } from "../../ui/Problem";
import { statusLabel } from "../format";
import { duration, runFilters, RUN_STATUSES, type RunFilters } from "./runs";

type Run = Schemas["Run"];

/**
 * `/runs`: the run history, newest first, filtered by instrument, status,
 * operator and start-time window (the filters live in the address, so a
 * filtered list can be shared and survives a reload), a page at a time
 * with the API's cursor; starting a run.
 */
export function RunsPage() {
  const me = useMe();
  const canStart = useCan("runs:create");
  const canSeeUsers = useCan("users:manage");
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const filters = runFilters(params);
  // The cursors of the pages before this one, to go back.
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [starting, setStarting] = useState(false);

  const instruments = useQuery({
    queryKey: ["instruments", "all"],
    queryFn: () => call(() => api.GET("/api/v1/instruments", { params: { query: { limit: 100 } } })),
  });
  const users = useQuery({
    queryKey: ["users"],
    queryFn: () => call(() => api.GET("/api/v1/users")),
    enabled: canSeeUsers,
    staleTime: 60_000,
  });
  const runs = useQuery({
    queryKey: ["runs", filters, cursor],
    queryFn: () =>
      call(() =>
        api.GET("/api/v1/runs", {
          params: {
            query: {
              limit: 25,
              ...(filters.instrumentId ? { instrumentId: filters.instrumentId } : {}),
              ...(filters.status ? { status: filters.status } : {}),
              ...(filters.operatorId ? { operatorId: filters.operatorId } : {}),
              ...(filters.from ? { startedFrom: new Date(`${filters.from}T00:00`).toISOString() } : {}),
              ...(filters.to ? { startedTo: new Date(`${filters.to}T23:59:59.999`).toISOString() } : {}),
              ...(cursor ? { cursor } : {}),
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
    refetchInterval: (query) => (query.state.data?.items.some((r) => r.status === "pending" || r.status === "running") ? 5_000 : false),
  });

  const setFilter = (name: keyof RunFilters, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setCursors([]);
    setParams(next, { replace: true });
  };
  const operatorName = (id: string | null | undefined) => {
    if (!id) return "—";
    if (id === me.data?.id) return `${me.data.name} (you)`;
    return users.data?.items.find((u) => u.id === id)?.name ?? "Another user";
  };
  const filtered = Object.values(filters).some(Boolean);

  return (
    <section className="page" aria-labelledby="runs-title">
      <div className="page-head">
        <h1 id="runs-title">Runs</h1>
        {canStart && (
          <div className="head-actions">
            <button type="button" onClick={() => setStarting(true)}>Start a run…</button>
          </div>
        )}
      </div>
      <form className="toolbar" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <span className="filter">
          <label htmlFor="filter-instrument">Instrument</label>
          <select id="filter-instrument" value={filters.instrumentId} onChange={(e) => setFilter("instrumentId", e.target.value)}>
            <option value="">All instruments</option>
            {instruments.data?.items.map((i) => <option key={i.id} value={i.id}>{i.name}</option>)}
          </select>
        </span>
        <span className="filter">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={filters.status} onChange={(e) => setFilter("status", e.target.value)}>
            <option value="">Any status</option>
            {RUN_STATUSES.map((s) => <option key={s} value={s}>{statusLabel(s)}</option>)}
          </select>
        </span>
        <span className="filter">
          <label htmlFor="filter-operator">Operator</label>
          <select id="filter-operator" value={filters.operatorId} onChange={(e) => setFilter("operatorId", e.target.value)}>
            <option value="">Anyone</option>
            {me.data && <option value={me.data.id}>Me</option>}
            {users.data?.items.filter((u) => u.id !== me.data?.id).map((u) => <option key={u.id} value={u.id}>{u.name}</option>)}
          </select>
        </span>
        <span className="filter">
          <label htmlFor="filter-from">Started from</label>
          <input id="filter-from" type="date" value={filters.from} onChange={(e) => setFilter("from", e.target.value)} />
        </span>
        <span className="filter">
          <label htmlFor="filter-to">to</label>
          <input id="filter-to" type="date" value={filters.to} onChange={(e) => setFilter("to", e.target.value)} />
        </span>
        {filtered && <button type="button" className="secondary" onClick={() => { setCursors([]); setParams({}, { replace: true }); }}>Clear filters</button>}
      </form>

      {runs.isPending && <p role="status">Loading runs…</p>}
      {runs.isError && <Problem error={runs.error} title="The runs could not be loaded" />}
      {runs.isSuccess && runs.data.items.length === 0 && (
        <div className="empty">
          <p>{filtered ? "No run matches these filters." : "No run has been started yet."}</p>
        </div>
      )}
      {runs.isSuccess && runs.data.items.length > 0 && (
        <table className="table runs" aria-busy={runs.isFetching}>
          <caption className="visually-hidden">Runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Run</th><th scope="col">Instrument</th><th scope="col">Status</th>
              <th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Operator</th><th scope="col">Signatures</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.items.map((run: Run) => (
              <tr key={run.id} data-run={run.id}>
                <td><Link to={`/runs/${run.id}`}>{run.name ?? "Unnamed run"}</Link></td>
                <td><Link to={`/instruments/${run.instrumentId}`}>{run.instrumentName}</Link></td>
                <td><span className={`badge run-${run.status}`}>{statusLabel(run.status)}</span></td>
                <td>{run.startedAt ? new Date(run.startedAt).toLocaleString() : <span className="muted">not yet</span>}</td>
                <td>{duration(run.startedAt, run.completedAt)}</td>
                <td>{operatorName(run.operatorId)}</td>
                <td>{run.signatures.length === 0 ? <span className="muted">none</span> : run.signatures.map((s) => s.meaning).join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs.isSuccess && (cursors.length > 0 || runs.data.nextCursor) && (
        <nav className="pager" aria-label="Pages of runs">
          <button type="button" className="secondary" disabled={cursors.length === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
            Newer
          </button>
          <span className="muted">Page {cursors.length + 1}</span>
          <button type="button" className="secondary" disabled={!runs.data.nextCursor}
            onClick={() => runs.data.nextCursor && setCursors((c) => [...c, runs.data.nextCursor!])}>
            Older
          </button>
        </nav>
      )}
      {starting && (
        <StartRun instruments={instruments.data?.items ?? []} preset={filters.instrumentId}
          onClose={() => setStarting(false)} onStarted={(run) => navigate(`/runs/${run.id}`)} />
      )}
    </section>
  );
}

function StartRun({ instruments, preset, onClose, onStarted }: {
  instruments: Schemas["Instrument"][];
  preset: string;
  onClose: () => void;
  onStarted: (run: Run) => void;
}) {
  const client = useQueryClient();
  // One key per dialog: a retry after a lost answer cannot start a second run.
  const [key] = useState(() => crypto.randomUUID());
  const start = useMutation({
    mutationFn: (body: Schemas["StartInput"]) =>
      call(() => api.POST("/api/v1/runs", { params: { header: { "Idempotency-Key": key } }, body })),
    onSuccess: (run) => {
      void client.invalidateQueries({ queryKey: ["runs"] });
      onStarted(run);
    },
  });
  const ready = instruments.filter((i) => !i.deletedAt && (i.status === "online" || i.status === "idle"));
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? "").trim();
    start.mutate({
      instrumentId: text("instrumentId"),
      ...(text("name") ? { name: text("name") } : {}),
      ...(text("protocol") ? { protocol: text("protocol") } : {}),
      // Free-form in the API (typed `Record<string, never>` by the generator).
      ...(text("sample") ? { metadata: { sample: text("sample") } as never } : {}),
    });
  };
  const error = (field: string) => (start.error instanceof ApiFailure ? start.error.forField(field) : undefined);
  return (
    <Dialog title="Start a run" onClose={onClose}
      description={<p>The instrument must be online or idle with no run. It starts when its bridge acknowledges.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <label htmlFor="start-instrument">Instrument</label>
        <select id="start-instrument" name="instrumentId" defaultValue={ready.some((i) => i.id === preset) ? preset : ""} required
          aria-invalid={error("instrumentId") ? true : undefined}>
          <option value="">Choose an instrument…</option>
          {ready.map((i) => <option key={i.id} value={i.id}>{i.name} ({statusLabel(i.status)})</option>)}
        </select>
        {ready.length === 0 && <p className="muted small">No instrument is online or idle now.</p>}
        {error("instrumentId") && <p className="field-error">{error("instrumentId")}</p>}
        <label htmlFor="start-name">Name (optional)</label>
        <input id="start-name" name="name" maxLength={255} />
        <label htmlFor="start-protocol">Protocol (optional)</label>
        <input id="start-protocol" name="protocol" maxLength={255} />
        <label htmlFor="start-sample">Sample (optional)</label>
        <input id="start-sample" name="sample" maxLength={255} />
        {start.isError && <Problem error={start.error} title="The run was not started" />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={start.isPending}>{start.isPending ? "Starting…" : "Start"}</button>
        </div>
      </form>
    </Dialog>
  );
}

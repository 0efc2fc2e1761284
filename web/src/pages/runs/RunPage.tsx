import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { api, call, type Schemas } from "../../api/client";
import { useCan } from "../../auth/useSession";
import { Dialog } from "../../ui/Dialog";
import { Problem } from "../../ui/Problem";
import { statusLabel } from "../format";
import { format } from "../instrument/chart";
import { duration } from "./runs";
import { RunData } from "./RunData";
import { Signatures } from "./Signatures";

type Run = Schemas["Run"];

const RESULT_LABEL: Record<string, string> = { pass: "Pass", warning: "Warning", fail: "Fail", not_available: "Not available" };
const QUALITY_LABEL: Record<string, string> = {
  excellent: "Excellent", good: "Good", fair: "Fair", poor: "Poor", not_available: "Not available",
};

/**
 * `/runs/:id`: one run — what it ran on, its state (read again every few
 * seconds while it is pending or running), its metadata and results, its
 * QC checks against their thresholds, its data file (upload, resume,
 * download with its digest checked) and signatures (signing with
 * re-authentication); stopping it with an outcome and a reason.
 */
export function RunPage() {
  const { id = "" } = useParams();
  const canStop = useCan("runs:create");
  const canDownload = useCan("data:export");
  const [stopping, setStopping] = useState(false);
  const run = useQuery({
    queryKey: ["run", id],
    queryFn: () => call(() => api.GET("/api/v1/runs/{id}", { params: { path: { id } } })),
    refetchInterval: (query) => (query.state.data && active(query.state.data) ? 3_000 : false),
  });
  const qc = useQuery({
    queryKey: ["run-qc", id, run.data?.version],
    queryFn: () => call(() => api.GET("/api/v1/runs/{id}/qc", { params: { path: { id } } })),
    enabled: run.isSuccess,
  });

  if (run.isPending) return <p role="status">Loading the run…</p>;
  if (run.isError) {
    return (
      <section className="page narrow" aria-labelledby="run-missing">
        <h1 id="run-missing">Run</h1>
        <Problem error={run.error} title="This run could not be loaded" />
        <p><Link to="/runs">Back to the runs</Link></p>
      </section>
    );
  }
  const r = run.data;
  const metadata = entries(r.metadata);
  const results = entries(r.results).filter(([key]) => key !== "metrics");

  return (
    <section className="page" aria-labelledby="run-title">
      <p className="crumbs"><Link to="/runs">Runs</Link> <span aria-hidden="true">›</span> {r.name ?? "Unnamed run"}</p>
      <div className="page-head">
        <h1 id="run-title">{r.name ?? "Unnamed run"}</h1>
        <span className={`badge run-${r.status}`} data-run-status={r.status}>{statusLabel(r.status)}</span>
        {canStop && active(r) && (
          <div className="head-actions">
            <button type="button" className="secondary danger-text" onClick={() => setStopping(true)}>Stop…</button>
          </div>
        )}
      </div>
      {r.status === "pending" && (
        <p className="notice" role="status">Waiting for {r.instrumentName}'s bridge to acknowledge the start.</p>
      )}
      <dl className="facts wide">
        <dt>Instrument</dt><dd><Link to={`/instruments/${r.instrumentId}`}>{r.instrumentName}</Link> ({statusLabel(r.instrumentStatus)})</dd>
        <dt>Started</dt><dd>{r.startedAt ? new Date(r.startedAt).toLocaleString() : "Not yet"}</dd>
        <dt>Duration</dt><dd>{duration(r.startedAt, r.completedAt)}</dd>
        <dt>Ended</dt><dd>{r.completedAt ? new Date(r.completedAt).toLocaleString() : "—"}</dd>
        {r.endReason && (<><dt>Reason</dt><dd>{r.endReason}</dd></>)}
        <dt>Version</dt><dd>{r.version}</dd>
      </dl>

      <div className="two-columns">
        <section className="panel" aria-labelledby="qc-title">
          <div className="panel-head">
            <h2 id="qc-title">Quality control</h2>
            {qc.data && <span className={`badge quality-${qc.data.dataQuality}`}>Data quality: {QUALITY_LABEL[qc.data.dataQuality]}</span>}
          </div>
          {qc.isPending && <p role="status">Loading the QC checks…</p>}
          {qc.isError && <Problem error={qc.error} title="The QC checks could not be loaded" />}
          {qc.isSuccess && qc.data.checks.length === 0 && <p className="muted">This instrument type has no QC checks.</p>}
          {qc.isSuccess && qc.data.checks.length > 0 && (
            <table className="table">
              <caption className="visually-hidden">QC checks</caption>
              <thead>
                <tr><th scope="col">Check</th><th scope="col">Value</th><th scope="col">Warn / fail</th><th scope="col">Result</th></tr>
              </thead>
              <tbody>
                {qc.data.checks.map((check) => (
                  <tr key={check.metric} data-check={check.metric}>
                    <th scope="row">{check.description}<span className="muted small"> ({check.metric})</span></th>
                    <td>{check.value === null || check.value === undefined ? "—" : format(check.value)}</td>
                    <td>
                      {check.better === "higher" ? "below " : "above "}{format(check.warn)} / {format(check.fail)}
                    </td>
                    <td><span className={`badge check-${check.result}`}>{RESULT_LABEL[check.result]}</span></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {qc.data?.dataQuality === "not_available" && (
            <p className="muted small">The checks run on the results parsed from the run's data file, once one is uploaded.</p>
          )}
        </section>

        <section className="panel" aria-labelledby="details-title">
          <h2 id="details-title">Metadata and results</h2>
          {metadata.length === 0 && results.length === 0 && <p className="muted">None recorded.</p>}
          {metadata.length > 0 && <KeyValues title="Metadata" items={metadata} />}
          {results.length > 0 && <KeyValues title="Results" items={results} />}
        </section>
      </div>

      <div className="two-columns">
        <RunData run={r} canUpload={canStop} canDownload={canDownload} />
        <Signatures run={r} />
      </div>
      {stopping && <StopRun run={r} onClose={() => setStopping(false)} />}
    </section>
  );
}

const active = (run: Run) => run.status === "pending" || run.status === "running";

function entries(value: unknown): [string, unknown][] {
  return value && typeof value === "object" && !Array.isArray(value) ? Object.entries(value as Record<string, unknown>) : [];
}

function KeyValues({ title, items }: { title: string; items: [string, unknown][] }) {
  return (
    <>
      <h3 className="small-heading">{title}</h3>
      <dl className="facts">
        {items.map(([key, value]) => (
          <div key={key} className="fact">
            <dt>{key}</dt>
            <dd>{typeof value === "object" && value !== null ? <code className="small">{JSON.stringify(value)}</code> : String(value)}</dd>
          </div>
        ))}
      </dl>
    </>
  );
}

function StopRun({ run, onClose }: { run: Run; onClose: () => void }) {
  const client = useQueryClient();
  const stop = useMutation({
    mutationFn: (body: Schemas["StopInput"]) => call(() => api.PUT("/api/v1/runs/{id}/stop", { params: { path: { id: run.id } }, body })),
    onSuccess: (stopped) => {
      client.setQueryData(["run", run.id], stopped);
      void client.invalidateQueries({ queryKey: ["runs"] });
      onClose();
    },
  });
  const outcomes: { value: Schemas["StopOutcome"]; label: string }[] =
    run.status === "running"
      ? [{ value: "completed", label: "Completed" }, { value: "aborted", label: "Aborted" }, { value: "failed", label: "Failed" }]
      : [{ value: "aborted", label: "Aborted" }, { value: "failed", label: "Failed" }];
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const reason = String(form.get("reason") ?? "").trim();
    stop.mutate({ outcome: String(form.get("outcome")) as Schemas["StopOutcome"], ...(reason ? { reason } : {}) });
  };
  return (
    <Dialog title={`Stop ${run.name ?? "the run"}?`} onClose={onClose}
      description={<p>Aborting a running run sends its instrument a stop command. The outcome and reason are kept on the run and in the audit trail.</p>}>
      <form className="form" onSubmit={submit} noValidate>
        <fieldset>
          <legend>Outcome</legend>
          {outcomes.map((o, i) => (
            <div className="check" key={o.value}>
              <label htmlFor={`outcome-${o.value}`}>{o.label}</label>
              <input type="radio" id={`outcome-${o.value}`} name="outcome" value={o.value} defaultChecked={i === 0} />
            </div>
          ))}
        </fieldset>
        <label htmlFor="stop-reason">Reason</label>
        <textarea id="stop-reason" name="reason" rows={3} maxLength={1000} />
        {stop.isError && <Problem error={stop.error} title="The run was not stopped" />}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Keep it running</button>
          <button type="submit" className="danger" disabled={stop.isPending}>{stop.isPending ? "Stopping…" : "Stop the run"}</button>
        </div>
      </form>
    </Dialog>
  );
}

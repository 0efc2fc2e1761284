import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ApiFailure, callRaw, type Schemas } from "../../api/client";
import { Problem } from "../../ui/Problem";
import { statusLabel } from "../format";
import { saveFile, sha256Hex } from "../../ui/files";
import { FORMATS, Interrupted, uploadRunData } from "./upload";

type Run = Schemas["Run"];

/** "512 B", "1.5 KB", "100.0 MB" (powers of 1000, as disks are sold). */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

type Sending =
  | { step: "idle" }
  | { step: "hashing"; file: File }
  | { step: "sending"; file: File; received: number; total: number; started: number }
  | { step: "interrupted"; file: File; received: number; total: number; message: string; chunkBytes: number | undefined; format: string }
  | { step: "done"; data: Schemas["DataView"]; seconds: number };

/**
 * A run's data file: what is recorded (name, size, SHA-256); uploading
 * one in chunks with a progress bar, resumable after an interruption (the
 * server's `receivedBytes`, also after a reload with the same file); and
 * downloading it with its digest checked here against the recorded one.
 */
export function RunData({ run, canUpload, canDownload }: { run: Run; canUpload: boolean; canDownload: boolean }) {
  const client = useQueryClient();
  const [sending, setSending] = useState<Sending>({ step: "idle" });
  const [problem, setProblem] = useState<unknown>(null);
  const abort = useRef<AbortController | null>(null);
  const data = run.data;
  const unfinished = data?.status === "uploading" ? data : null;
  const formats = FORMATS[run.instrumentType] ?? [];

  const send = async (file: File, from: number, format: string, chunkBytes?: number) => {
    setProblem(null);
    const controller = new AbortController();
    abort.current = controller;
    setSending({ step: "hashing", file });
    try {
      const sha256 = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
      if (controller.signal.aborted) throw new Interrupted(from, chunkBytes, new DOMException("Paused", "AbortError"));
      const started = performance.now();
      setSending({ step: "sending", file, received: from, total: file.size, started });
      const recorded = await uploadRunData({
        runId: run.id,
        file,
        filename: file.name,
        ...(format ? { format } : {}),
        offset: from,
        sha256,
        ...(chunkBytes ? { chunkBytes } : {}),
        signal: controller.signal,
        onProgress: (received, total) => setSending({ step: "sending", file, received, total, started }),
      });
      setSending({ step: "done", data: recorded, seconds: (performance.now() - started) / 1000 });
    } catch (error) {
      if (error instanceof Interrupted) {
        setSending({
          step: "interrupted", file, received: error.received, total: file.size, message: error.message,
          chunkBytes: error.chunkBytes, format,
        });
      } else {
        setSending({ step: "idle" });
        setProblem(error instanceof ApiFailure ? error : new Error("The file could not be read or sent from this browser."));
      }
    } finally {
      abort.current = null;
      await client.invalidateQueries({ queryKey: ["run", run.id] });
      await client.invalidateQueries({ queryKey: ["run-qc", run.id] });
    }
  };

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const file = form.get("file");
    if (!(file instanceof File) || file.name === "") {
      setProblem(new Error("Choose a file first."));
      return;
    }
    // The same file as an unfinished upload goes on from where it stopped.
    const resumes = unfinished && unfinished.filename === file.name && unfinished.totalBytes === file.size;
    void send(file, resumes ? unfinished.receivedBytes : 0, String(form.get("format") ?? ""));
  };

  const busy = sending.step === "hashing" || sending.step === "sending";
  return (
    <section className="panel" aria-labelledby="data-title">
      <h2 id="data-title">Data file</h2>
      {!data && sending.step !== "done" && <p className="muted">No data file has been uploaded.</p>}
      {data && <DataFile data={data} />}
      {data?.status === "complete" && canDownload && <Download run={run} data={data} />}

      {canUpload && data?.status !== "complete" && data?.status !== "purged" && (
        <form className="form upload" onSubmit={submit} aria-label="Upload the data file">
          {unfinished && sending.step === "idle" && (
            <p className="notice">
              An upload of {unfinished.filename} stopped at {bytes(unfinished.receivedBytes)} of {bytes(unfinished.totalBytes)}.
              Choose the same file to go on from there.
            </p>
          )}
          <label htmlFor="data-file">File</label>
          <input id="data-file" name="file" type="file" disabled={busy} />
          {formats.length > 0 && (
            <>
              <label htmlFor="data-format">Parse into results</label>
              <select id="data-format" name="format" disabled={busy} defaultValue="">
                <option value="">No: keep the file only</option>
                {formats.map((f) => <option key={f.value} value={f.value}>{f.label}</option>)}
              </select>
            </>
          )}
          {(sending.step === "sending" || sending.step === "interrupted") && (
            <div className="progress-row">
              <progress id="upload-progress" max={sending.total} value={sending.received} aria-label="Upload progress" />
              <span className="muted small" aria-live="polite">
                {bytes(sending.received)} of {bytes(sending.total)} ({Math.floor((100 * sending.received) / Math.max(1, sending.total))}%)
              </span>
            </div>
          )}
          {sending.step === "hashing" && <p role="status" className="muted">Computing the file's SHA-256…</p>}
          {sending.step === "interrupted" && (
            <div className="problem" role="alert">
              <strong>The upload stopped at {bytes(sending.received)}.</strong>
              <p>{sending.message} What was sent is kept: resume to send the rest.</p>
            </div>
          )}
          {problem !== null && <Problem error={problem} title="The file was not uploaded" />}
          <div className="actions start">
            {sending.step === "interrupted" ? (
              <button type="button" onClick={() => void send(sending.file, sending.received, sending.format, sending.chunkBytes)}>Resume upload</button>
            ) : (
              <button type="submit" disabled={busy}>{unfinished ? "Upload or resume" : "Upload"}</button>
            )}
            {busy && <button type="button" className="secondary" onClick={() => abort.current?.abort()}>Pause</button>}
          </div>
        </form>
      )}
      {sending.step === "done" && (
        <p className="notice" role="status">
          {sending.data.filename} is recorded ({bytes(sending.data.sizeBytes)} in {sending.seconds.toFixed(1)} s); the server checked its SHA-256.
        </p>
      )}
    </section>
  );
}

function DataFile({ data }: { data: Schemas["DataSummary"] }) {
  const complete = data.status === "complete";
  return (
    <dl className="facts">
      <dt>File</dt><dd>{data.filename} <span className="muted small">({data.contentType})</span></dd>
      <dt>Size</dt>
      <dd>{complete ? bytes(data.totalBytes) : `${bytes(data.receivedBytes)} of ${bytes(data.totalBytes)} received`}</dd>
      <dt>Status</dt><dd>{data.status === "complete" ? "Recorded" : data.status === "purged" ? "Removed under the retention policy" : statusLabel(data.status)}</dd>
      {data.format && (<><dt>Parsed as</dt><dd>{data.format}</dd></>)}
      {data.sha256 && (<><dt>SHA-256</dt><dd><code className="break small" data-sha256={data.sha256}>{data.sha256}</code></dd></>)}
      {data.completedAt && (<><dt>Uploaded</dt><dd>{new Date(data.completedAt).toLocaleString()}</dd></>)}
    </dl>
  );
}

/** Downloads the file through the API, checks its SHA-256 here, and saves it. */
function Download({ run, data }: { run: Run; data: Schemas["DataSummary"] }) {
  const [checked, setChecked] = useState<{ digest: string; url: string } | null>(null);
  // The file the page holds is let go with the page (or the next download).
  useEffect(() => () => {
    if (checked) URL.revokeObjectURL(checked.url);
  }, [checked]);
  const download = useMutation({
    mutationFn: async () => {
      const { data: body } = await callRaw(() =>
        api.GET("/api/v1/runs/{id}/data", { params: { path: { id: run.id }, query: { via: "api" } }, parseAs: "arrayBuffer" }),
      );
      const buffer = body as ArrayBuffer;
      const digest = await sha256Hex(buffer);
      const url = URL.createObjectURL(new Blob([buffer], { type: data.contentType }));
      return { digest, url };
    },
    onSuccess: (done) => {
      setChecked(done);
      saveFile(done.url, data.filename);
    },
  });
  const matches = checked?.digest === data.sha256;
  return (
    <div className="download">
      <button type="button" className="secondary" onClick={() => download.mutate()} disabled={download.isPending}>
        {download.isPending ? "Downloading…" : `Download ${data.filename}`}
      </button>
      {checked && (
        <p className={matches ? "check-ok" : "check-bad"} role="status" data-download-digest={matches ? "match" : "mismatch"}>
          {matches
            ? "The downloaded file's SHA-256 matches the recorded one."
            : "The downloaded file's SHA-256 differs from the recorded one: do not use it."}
          <br /><code className="break small">{checked.digest}</code>
          <br /><a href={checked.url} download={data.filename}>Save it again</a>
        </p>
      )}
      {download.isError && <Problem error={download.error} title="The file was not downloaded" />}
    </div>
  );
}

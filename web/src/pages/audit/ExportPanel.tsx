import { useEffect, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, callRaw, type Schemas } from "../../api/client";
import { Problem } from "../../ui/Problem";
import { ShownOnce } from "../../ui/Secret";
import { saveFile, sha256Hex, shellWord } from "../../ui/files";
import { auditQuery, headerManifest, splitExport, type AuditFilters } from "./audit";

type Format = Schemas["ExportFormat"];

interface Exported {
  file: string;
  url: string;
  manifest: Schemas["Manifest"];
  /** The SHA-256 the browser computed over what the manifest covers. */
  digest: string;
  format: Format;
  manifestUrl: string | null;
}

/**
 * Exports the events the filters select (oldest first, every chained
 * field) as JSON Lines or CSV, saves the file, and checks its digest
 * against its signed manifest here; says how to check it offline.
 */
export function ExportPanel({ filters, filtered }: { filters: AuditFilters; filtered: boolean }) {
  const [format, setFormat] = useState<Format>("jsonl");
  const [exported, setExported] = useState<Exported | null>(null);
  const client = useQueryClient();
  useEffect(() => () => {
    if (exported) {
      URL.revokeObjectURL(exported.url);
      if (exported.manifestUrl) URL.revokeObjectURL(exported.manifestUrl);
    }
  }, [exported]);
  const run = useMutation({
    mutationFn: async (after: number | undefined): Promise<Exported> => {
      const { data, response } = await callRaw(() =>
        api.GET("/api/audit/export", {
          params: { query: { ...auditQuery(filters), format, ...(after !== undefined ? { after } : {}) } },
          parseAs: "arrayBuffer",
        }),
      );
      const bytes = new Uint8Array(data as ArrayBuffer);
      const file = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? `audit.${format}`;
      let manifest: Schemas["Manifest"] | null;
      let covered: Uint8Array;
      let manifestUrl: string | null = null;
      if (format === "csv") {
        const header = response.headers.get("Antevus-Manifest");
        manifest = headerManifest(header);
        covered = bytes;
        if (header) manifestUrl = URL.createObjectURL(new Blob([header], { type: "text/plain" }));
      } else {
        const { body, trailer } = splitExport(bytes);
        const last = trailer as { manifest?: Schemas["Manifest"]; error?: { message: string; requestId: string } } | null;
        if (last?.error) throw new Error(`The export stopped short: ${last.error.message} (request ${last.error.requestId}).`);
        manifest = last?.manifest ?? null;
        covered = body;
      }
      if (!manifest) throw new Error("The export came without its manifest: it cannot be checked. Try again.");
      const digest = await sha256Hex(covered);
      const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: format === "csv" ? "text/csv" : "application/x-ndjson" }));
      return { file, url, manifest, digest, format, manifestUrl };
    },
    onSuccess: (done) => {
      setExported(done);
      saveFile(done.url, done.file);
      // The export is itself in the trail now.
      void client.invalidateQueries({ queryKey: ["audit-events"] });
    },
  });
  const offline = exported
    ? `antevus-audit verify-export --file ${shellWord(exported.file)}${exported.format === "csv" ? " --manifest manifest.txt" : ""} --public-keys "$AUDIT_PUBLIC_KEYS"`
    : "";
  const m = exported?.manifest;
  const matches = exported && m && exported.digest === m.sha256;
  return (
    <section className="panel" aria-labelledby="export-title">
      <div className="panel-head">
        <h2 id="export-title">Export</h2>
      </div>
      <form className="toolbar" onSubmit={(e) => { e.preventDefault(); run.mutate(undefined); }}>
        <span className="filter">
          <label htmlFor="export-format">Format</label>
          <select id="export-format" value={format} onChange={(e) => setFormat(e.target.value as Format)}>
            <option value="jsonl">JSON Lines (every event, streamed)</option>
            <option value="csv">CSV (up to 20,000 events)</option>
          </select>
        </span>
        <button type="submit" disabled={run.isPending}>{run.isPending ? "Exporting…" : filtered ? "Export the filtered events" : "Export every event"}</button>
      </form>
      <p className="muted small">The export is recorded in the audit trail. Its manifest is signed: anyone with the deployment's public keys can check it.</p>
      {run.isError && <Problem error={run.error} title="Nothing was exported" />}
      {exported && m && (
        <div className="export-result" role="status">
          <p>
            <strong>{m.count.toLocaleString()} event{m.count === 1 ? "" : "s"}</strong>
            {m.firstSequence != null && m.lastSequence != null && <> (#{m.firstSequence} to #{m.lastSequence})</>} in{" "}
            <a href={exported.url} download={exported.file}>{exported.file}</a>, signed with key <code>{m.keyId}</code> at{" "}
            {new Date(m.exportedAt).toLocaleString()}.
          </p>
          {m.truncated && (
            <p className="notice">
              More events matched than one export holds.{" "}
              <button type="button" className="link" disabled={run.isPending} onClick={() => run.mutate(m.lastSequence ?? undefined)}>
                Export the rest, from after #{m.lastSequence}
              </button>
            </p>
          )}
          <p className={matches ? "check-ok" : "check-bad"} data-digest={matches ? "match" : "mismatch"}>
            {matches
              ? "The file's SHA-256 matches its manifest."
              : "The file's SHA-256 differs from its manifest: do not rely on this file."}
            <br /><code className="break small">{exported.digest}</code>
          </p>
          {exported.manifestUrl && (
            <p><a href={exported.manifestUrl} download="manifest.txt">Save the manifest</a> (a CSV file's manifest travels beside it).</p>
          )}
          <ShownOnce id="offline-check" label="Check it offline" value={offline} multiline />
        </div>
      )}
    </section>
  );
}

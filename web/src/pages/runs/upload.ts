// A run's data file sent in chunks, as the API takes them: `Content-Range`
// on each, the whole file's `Repr-Digest` with the first, the next chunk
// from the answer's `Upload-Offset`, the chunk size from its `chunkBytes`
// (or, for a chunk refused for its size, from `Upload-Limit`), and an
// interrupted upload resumed where the server says it stands.
import { ApiFailure, failureOf, type Schemas } from "../../api/client";
import { session } from "../../auth/session";

/** The first chunk's size: what every backend takes (PostgreSQL's 2 MiB). */
export const FIRST_CHUNK_BYTES = 2 << 20;

/** `Upload-Limit: min-append-size=…, max-append-size=…` as numbers. */
export function uploadLimit(header: string | null): { min: number; max: number } | null {
  if (!header) return null;
  const field = (name: string) => {
    const m = new RegExp(`(?:^|[,;\\s])${name}=(\\d+)`).exec(header);
    return m ? Number(m[1]) : undefined;
  };
  const max = field("max-append-size");
  if (max === undefined || max <= 0) return null;
  return { min: field("min-append-size") ?? 1, max };
}

/** `bytes first-last/total` for the chunk [first, end). */
export function contentRange(first: number, end: number, total: number): string {
  return `bytes ${first}-${end - 1}/${total}`;
}

/** The RFC 9530 digest field of a SHA-256. */
export function digestField(sha256: ArrayBuffer): string {
  let text = "";
  for (const b of new Uint8Array(sha256)) text += String.fromCharCode(b);
  return `sha-256=:${btoa(text)}:`;
}

export interface UploadOptions {
  runId: string;
  file: Blob;
  filename: string;
  /** Parse the file into the run's results. */
  format?: string;
  /** Where to start: 0, or the `receivedBytes` of an unfinished upload of this file. */
  offset: number;
  /** The file's SHA-256 (computed once, before the first chunk). */
  sha256: ArrayBuffer;
  /** The chunk size an earlier part of this upload learned (else the first chunk finds it). */
  chunkBytes?: number;
  onProgress: (received: number, total: number) => void;
  signal: AbortSignal;
}

/** Why an upload stopped before the file was recorded, and where it can go on from. */
export class Interrupted extends Error {
  readonly received: number;
  /** The chunk size the upload had learned, to resume with. */
  readonly chunkBytes: number | undefined;
  constructor(received: number, chunkBytes: number | undefined, cause: unknown) {
    super(cause instanceof DOMException && cause.name === "AbortError" ? "Paused." : "The connection to the server was lost.");
    this.received = received;
    this.chunkBytes = chunkBytes;
  }
}

/**
 * Sends `file` from `offset` to its end; resolves with the recorded file.
 * A network failure or an abort rejects with `Interrupted` (and the
 * offset to resume from); a refusal with the API's `ApiFailure`.
 */
export async function uploadRunData(o: UploadOptions): Promise<Schemas["DataView"]> {
  const total = o.file.size;
  let offset = o.offset;
  let chunk = o.chunkBytes ?? FIRST_CHUNK_BYTES;
  let learned = o.chunkBytes !== undefined;
  let adjusted = false;
  let refreshed = false;
  for (;;) {
    const end = total === 0 ? 0 : Math.min(offset + chunk, total);
    const query = new URLSearchParams({ filename: o.filename });
    if (o.format) query.set("format", o.format);
    const headers = new Headers({ "Content-Type": o.file.type || "application/octet-stream" });
    if (total > 0) headers.set("Content-Range", contentRange(offset, end, total));
    // The whole file's digest with the first chunk and the last: a resumed
    // upload (after a reload, another file of the same name and size) is
    // checked as a whole when it ends.
    if (offset === 0 || end === total) headers.set("Repr-Digest", digestField(o.sha256));
    const token = session.accessToken();
    if (token) headers.set("Authorization", `Bearer ${token}`);
    let response: Response;
    let text: string;
    try {
      response = await fetch(`/api/v1/runs/${o.runId}/data?${query}`, {
        method: "POST",
        headers,
        body: o.file.slice(offset, end),
        credentials: "same-origin",
        signal: o.signal,
      });
      text = await response.text();
    } catch (cause) {
      throw new Interrupted(offset, learned ? chunk : undefined, cause);
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const data = (body as { data?: unknown } | undefined)?.data;
    if (response.status === 201 && data) {
      o.onProgress(total, total);
      return data as Schemas["DataView"];
    }
    if (response.status === 202 && data) {
      const progress = data as Schemas["Progress"];
      offset = Number(response.headers.get("Upload-Offset") ?? progress.receivedBytes);
      if (progress.chunkBytes > 0) {
        chunk = progress.chunkBytes;
        learned = true;
      }
      o.onProgress(offset, total);
      continue;
    }
    const failure = await failureOf(response, body);
    if (response.status === 401 && failure.code === "AUTH_TOKEN_EXPIRED" && !refreshed) {
      refreshed = true;
      if (await session.refresh()) continue;
    }
    // Refused for its size: the sizes that do, once.
    const limit = uploadLimit(response.headers.get("Upload-Limit"));
    if (limit && !adjusted) {
      adjusted = true;
      chunk = limit.max;
      learned = true;
      continue;
    }
    // At the wrong offset (another tab, a lost answer): go on from where it stands.
    const at = response.headers.get("Upload-Offset");
    if (response.status === 409 && at !== null && Number(at) !== offset && Number(at) <= total) {
      offset = Number(at);
      o.onProgress(offset, total);
      continue;
    }
    throw failure instanceof ApiFailure ? failure : new ApiFailure(response.status, "UNEXPECTED", "The upload was refused.");
  }
}

/** The formats the API parses into results, by instrument type. */
export const FORMATS: Record<string, { value: string; label: string }[]> = {
  plate_reader: [{ value: "plate_reader_csv", label: "Plate reader CSV" }],
  qpcr: [{ value: "qpcr_ct_csv", label: "qPCR Ct CSV" }],
};

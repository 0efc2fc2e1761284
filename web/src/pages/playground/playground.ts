// The API playground's plain logic over the served OpenAPI document: its
// operations by tag, an example body from a schema, a request's URL, and
// the curl command that makes the same request (with a placeholder, never
// the caller's credential).
import { shellWord } from "../../ui/files";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };

export interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  description?: string;
  required?: boolean;
  schema?: Schema;
}

export interface Operation {
  id: string;
  method: string;
  path: string;
  tag: string;
  summary: string;
  description: string;
  parameters: Parameter[];
  /** The JSON body's schema, when it takes one. */
  body: Schema | null;
  /** A body that is not JSON (a file upload). */
  binaryBody: boolean;
  responses: { status: string; description: string }[];
  /** Callable without credentials. */
  open: boolean;
}

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

/** The document's operations, in its order, the tag a group. */
export function operations(doc: { paths?: Record<string, Record<string, unknown>>; security?: unknown }): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (!op) continue;
      const content = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content;
      const responses = Object.entries((op.responses ?? {}) as Record<string, { description?: string }>).map(([status, r]) => ({
        status,
        description: r.description ?? "",
      }));
      out.push({
        id: String(op.operationId ?? `${method}-${path}`),
        method: method.toUpperCase(),
        path,
        tag: (op.tags as string[] | undefined)?.[0] ?? "Other",
        summary: String(op.summary ?? ""),
        description: String(op.description ?? ""),
        parameters: ((op.parameters as Parameter[] | undefined) ?? []).filter((p) => p.in !== "cookie"),
        body: content?.["application/json"]?.schema ?? null,
        binaryBody: !!content && !content["application/json"],
        responses,
        // An empty requirement among the document's: credentials are optional.
        open: Array.isArray(op.security) && op.security.some((r) => r && typeof r === "object" && Object.keys(r).length === 0),
      });
    }
  }
  return out;
}

/** Follows a `$ref` into the document's components. */
export function resolve(doc: unknown, schema: Schema | undefined): Schema | undefined {
  let current = schema;
  for (let hops = 0; current && typeof current.$ref === "string" && hops < 20; hops++) {
    const path = (current.$ref as string).replace(/^#\//, "").split("/");
    let node: unknown = doc;
    for (const part of path) node = (node as Record<string, unknown> | undefined)?.[part];
    current = node as Schema | undefined;
  }
  return current;
}

/**
 * An example value for `schema`: its example or first enum value, else
 * an object of its required fields (and the rest, shallowly), filled by
 * type; `depth` keeps recursive schemas finite.
 */
export function example(doc: unknown, schema: Schema | undefined, depth = 0): Json {
  const s = resolve(doc, schema);
  if (!s || depth > 6) return null;
  if (s.example !== undefined) return s.example;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0] ?? null;
  for (const key of ["oneOf", "anyOf"] as const) {
    const options = s[key];
    if (Array.isArray(options)) {
      const first = options.find((o) => (o as Schema).type !== "null") as Schema | undefined;
      return example(doc, first, depth + 1);
    }
  }
  if (Array.isArray(s.allOf)) {
    const merged: Record<string, Json> = {};
    for (const part of s.allOf) Object.assign(merged, example(doc, part as Schema, depth + 1) as object);
    return merged;
  }
  const type = Array.isArray(s.type) ? (s.type as Json[]).find((t) => t !== "null") : s.type;
  switch (type) {
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, Schema>;
      const required = new Set((s.required as string[] | undefined) ?? []);
      const out: Record<string, Json> = {};
      for (const [name, property] of Object.entries(properties)) {
        if (required.has(name) || depth === 0) out[name] = example(doc, property, depth + 1);
      }
      return out;
    }
    case "array":
      return [example(doc, s.items as Schema | undefined, depth + 1)];
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? s.minimum : 0;
    case "boolean":
      return false;
    case "string":
      if (s.format === "uuid") return "00000000-0000-0000-0000-000000000000";
      if (s.format === "date-time") return new Date(0).toISOString();
      if (s.format === "password") return "…";
      return "";
    default:
      return null;
  }
}

/** The request's path and query, its path parameters filled (encoded) and empty query values left out. */
export function requestPath(path: string, values: Record<string, string>, query: string[]): string {
  const filled = path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? ""));
  const search = new URLSearchParams();
  for (const name of query) if (values[name]) search.set(name, values[name]);
  const text = search.toString();
  return text ? `${filled}?${text}` : filled;
}

/**
 * The curl command of a request: the credential as a variable the reader
 * sets (`$ANTEVUS_TOKEN` or `$ANTEVUS_API_KEY`), never its value.
 */
export function curl(origin: string, method: string, pathAndQuery: string, auth: "token" | "key" | "none", body: string | null, headers: Record<string, string> = {}): string {
  const parts = ["curl", "-sS"];
  if (method !== "GET") parts.push("-X", method);
  parts.push(shellWord(origin + pathAndQuery));
  if (auth === "token") parts.push("-H", '"Authorization: Bearer $ANTEVUS_TOKEN"');
  if (auth === "key") parts.push("-H", '"X-API-Key: $ANTEVUS_API_KEY"');
  for (const [name, value] of Object.entries(headers)) if (value) parts.push("-H", shellWord(`${name}: ${value}`));
  if (body !== null) parts.push("-H", shellWord("Content-Type: application/json"), "--data", shellWord(body));
  return parts.join(" ");
}

/**
 * The body for the curl command, on one line, with secrets (a password,
 * a second-factor or recovery code, a token) replaced by a placeholder:
 * the command is for copying and sharing.
 */
export function redacted(text: string): string {
  const hide = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(hide);
    if (value && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, /password|secret|token|code$/i.test(k) && typeof v === "string" && v ? `<${k}>` : hide(v)]),
      );
    }
    return value;
  };
  try {
    return JSON.stringify(hide(JSON.parse(text)));
  } catch {
    return text;
  }
}

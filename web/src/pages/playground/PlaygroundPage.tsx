import { useMemo, useState, type FormEvent } from "react";
import { useQuery } from "@tanstack/react-query";
import { useSearchParams } from "react-router";
import { ApiFailure } from "../../api/client";
import { session } from "../../auth/session";
import { useMe } from "../../auth/useSession";
import { Problem } from "../../ui/Problem";
import { ShownOnce } from "../../ui/Secret";
import { curl, example, operations, redacted, requestPath, resolve, type Operation } from "./playground";

type Credential = "token" | "key" | "none";

interface Answer {
  status: number;
  ms: number;
  requestId: string | null;
  headers: [string, string][];
  body: string;
}

/** Headers of an answer worth showing. */
const SHOWN_HEADERS = ["content-type", "x-request-id", "etag", "location", "retry-after", "ratelimit-remaining", "upload-offset"];

/**
 * `/playground`: the API's own OpenAPI document as a reference (every
 * operation by tag, its parameters, body and answers), and each operation
 * tried from here with the signed-in user's token or an API key, with the
 * curl command that makes the same request.
 */
export function PlaygroundPage() {
  const [params, setParams] = useSearchParams();
  const [search, setSearch] = useState("");
  const doc = useQuery({
    queryKey: ["openapi"],
    queryFn: async () => {
      const response = await fetch("/api/openapi.json");
      if (!response.ok) throw new ApiFailure(response.status, "UNEXPECTED", "The API's document could not be read.");
      return (await response.json()) as Record<string, unknown>;
    },
    staleTime: Infinity,
  });
  const ops = useMemo(() => (doc.data ? operations(doc.data) : []), [doc.data]);
  const selected = ops.find((o) => o.id === params.get("op")) ?? ops[0];
  const needle = search.trim().toLowerCase();
  const shown = ops.filter((o) => !needle || `${o.method} ${o.path} ${o.summary}`.toLowerCase().includes(needle));
  const tags = [...new Set(shown.map((o) => o.tag))];

  return (
    <section className="page" aria-labelledby="playground-title">
      <div className="page-head">
        <h1 id="playground-title">API playground</h1>
        {doc.data && <span className="muted">{String((doc.data.info as { title?: string })?.title ?? "")} {String((doc.data.info as { version?: string })?.version ?? "")} · {ops.length} operations</span>}
        <div className="head-actions"><a href="/api/openapi.json" download="antevus-openapi.json">Download the OpenAPI document</a></div>
      </div>
      {doc.isPending && <p role="status">Loading the API's document…</p>}
      {doc.isError && <Problem error={doc.error} title="The API's document could not be loaded" />}
      {doc.data && (
        <div className="playground">
          <nav className="operations" aria-label="Operations">
            <label htmlFor="op-search" className="visually-hidden">Find an operation</label>
            <input id="op-search" type="search" placeholder="Find an operation…" value={search} onChange={(e) => setSearch(e.target.value)} />
            {tags.map((tag) => (
              <div key={tag}>
                <h2 className="small-heading">{tag}</h2>
                <ul className="plain compact">
                  {shown.filter((o) => o.tag === tag).map((o) => (
                    <li key={o.id}>
                      <button type="button" className={`op-link${o.id === selected?.id ? " current" : ""}`} aria-current={o.id === selected?.id ? "true" : undefined}
                        onClick={() => setParams({ op: o.id }, { replace: true })}>
                        <span className={`method method-${o.method.toLowerCase()}`}>{o.method}</span> <code>{o.path}</code>
                      </button>
                    </li>
                  ))}
                </ul>
              </div>
            ))}
            {shown.length === 0 && <p className="muted">No operation matches.</p>}
          </nav>
          {selected && <OperationView key={selected.id} doc={doc.data} op={selected} />}
        </div>
      )}
    </section>
  );
}

function OperationView({ doc, op }: { doc: unknown; op: Operation }) {
  const me = useMe();
  const [credential, setCredential] = useState<Credential>(op.open ? "none" : "token");
  const [key, setKey] = useState("");
  const [values, setValues] = useState<Record<string, string>>({});
  const [body, setBody] = useState(() => (op.body ? JSON.stringify(example(doc, op.body), null, 2) : ""));
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [sending, setSending] = useState(false);
  const query = op.parameters.filter((p) => p.in === "query").map((p) => p.name);
  const headerParams = op.parameters.filter((p) => p.in === "header");
  const target = requestPath(op.path, values, query);
  const extraHeaders = Object.fromEntries(headerParams.map((p) => [p.name, values[p.name] ?? ""]));
  const sendsBody = op.body !== null && op.method !== "GET" && body.trim() !== "";
  const command = curl(window.location.origin, op.method, target, credential, sendsBody ? redacted(body) : null, extraHeaders);

  const send = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setFailure(null);
    setAnswer(null);
    if (sendsBody) {
      try {
        JSON.parse(body);
      } catch {
        setFailure(new Error("The body is not JSON: correct it, or empty it to send none."));
        return;
      }
    }
    setSending(true);
    const attempt = async () => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(extraHeaders)) if (value) headers.set(name, value);
      if (credential === "token") {
        const token = session.accessToken();
        if (token) headers.set("Authorization", `Bearer ${token}`);
      } else if (credential === "key") {
        headers.set("X-API-Key", key.trim());
      }
      if (sendsBody) headers.set("Content-Type", "application/json");
      const started = performance.now();
      // The session's refresh cookie never goes with a playground request.
      const response = await fetch(target, { method: op.method, headers, body: sendsBody ? body : undefined, credentials: "omit" });
      const text = await response.text();
      return { response, text, ms: Math.round(performance.now() - started) };
    };
    try {
      let { response, text, ms } = await attempt();
      if (response.status === 401 && credential === "token" && text.includes("AUTH_TOKEN_EXPIRED") && (await session.refresh())) {
        ({ response, text, ms } = await attempt());
      }
      setAnswer({
        status: response.status,
        ms,
        requestId: response.headers.get("x-request-id"),
        headers: SHOWN_HEADERS.flatMap((name) => (response.headers.get(name) ? [[name, response.headers.get(name)!] as [string, string]] : [])),
        body: pretty(text),
      });
    } catch {
      setFailure(new Error("The request did not reach the API (the network, or a refused header)."));
    } finally {
      setSending(false);
    }
  };

  return (
    <article className="operation" aria-labelledby="op-title">
      <h2 id="op-title"><span className={`method method-${op.method.toLowerCase()}`}>{op.method}</span> <code>{op.path}</code></h2>
      <p><strong>{op.summary}</strong></p>
      {op.description.split(/\n\n+/).map((paragraph, i) => <p key={i} className="doc-text"><Prose text={paragraph.replace(/\n/g, " ")} /></p>)}

      {op.parameters.length > 0 && (
        <>
          <h3 className="small-heading">Parameters</h3>
          <table className="table params">
            <thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Type</th><th scope="col">About</th></tr></thead>
            <tbody>
              {op.parameters.map((p) => (
                <tr key={`${p.in}-${p.name}`}>
                  <td><code>{p.name}</code>{p.required && <span className="muted small"> required</span>}</td>
                  <td>{p.in}</td>
                  <td><code className="small">{typeText(doc, p.schema)}</code></td>
                  <td className="small"><Prose text={p.description ?? ""} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h3 className="small-heading">Answers</h3>
      <ul className="plain compact small">
        {op.responses.map((r) => <li key={r.status}><code>{r.status}</code> <Prose text={r.description} /></li>)}
      </ul>

      <form className="form try" onSubmit={(e) => void send(e)} aria-labelledby="try-title">
        <h3 id="try-title">Try it</h3>
        {op.method !== "GET" && (
          <p className="notice">This request acts on {me.data?.organization.name ?? "your organization"}'s real data, as you, and is audited like any other.</p>
        )}
        <fieldset>
          <legend>Credentials</legend>
          <div className="check">
            <label htmlFor="cred-token">My session{me.data ? ` (${me.data.email})` : ""}</label>
            <input type="radio" id="cred-token" name="credential" checked={credential === "token"} onChange={() => setCredential("token")} />
          </div>
          <div className="check">
            <label htmlFor="cred-key">An API key</label>
            <input type="radio" id="cred-key" name="credential" checked={credential === "key"} onChange={() => setCredential("key")} />
          </div>
          <div className="check">
            <label htmlFor="cred-none">None</label>
            <input type="radio" id="cred-none" name="credential" checked={credential === "none"} onChange={() => setCredential("none")} />
          </div>
          {credential === "key" && (
            <>
              <label htmlFor="try-key">API key</label>
              <input id="try-key" type="password" autoComplete="off" spellCheck={false} value={key} onChange={(e) => setKey(e.target.value)} placeholder="ak_…" />
            </>
          )}
        </fieldset>
        {op.parameters.map((p) => (
          <div className="field" key={`${p.in}-${p.name}`}>
            <label htmlFor={`param-${p.name}`}>{p.name}{p.required ? "" : " (optional)"}</label>
            <input id={`param-${p.name}`} value={values[p.name] ?? ""} spellCheck={false} required={p.required}
              onChange={(e) => setValues((v) => ({ ...v, [p.name]: e.target.value }))} />
          </div>
        ))}
        {sendsBody && (
          <>
            <label htmlFor="try-body">Body (JSON)</label>
            <textarea id="try-body" className="code" rows={Math.min(16, body.split("\n").length + 1)} spellCheck={false}
              value={body} onChange={(e) => setBody(e.target.value)} />
          </>
        )}
        {op.binaryBody && <p className="muted small">This operation takes a file: use the run page to upload one, or the curl command below with <code>--data-binary @file</code>.</p>}
        <ShownOnce id="try-curl" label="The same request with curl" value={command} multiline />
        <div className="actions start">
          <button type="submit" disabled={sending || (credential === "key" && !key.trim())}>{sending ? "Sending…" : `Send ${op.method}`}</button>
        </div>
      </form>
      {failure !== null && <Problem error={failure} title="Not sent" />}
      {answer && (
        <section className="answer" aria-labelledby="answer-title" data-answer-status={answer.status}>
          <h3 id="answer-title">Answer: <span className={answer.status < 400 ? "check-ok" : "check-bad"}>{answer.status}</span> <span className="muted small">in {answer.ms} ms</span></h3>
          <dl className="facts">
            {answer.headers.map(([name, value]) => (<div className="fact" key={name}><dt><code>{name}</code></dt><dd><code className="break">{value}</code></dd></div>))}
          </dl>
          <pre className="json" tabIndex={0} aria-label="The answer's body">{answer.body}</pre>
        </section>
      )}
    </article>
  );
}

/** The document's text with its `code` spans as code (as elements: never markup). */
function Prose({ text }: { text: string }) {
  return <>{text.split("`").map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part))}</>;
}

/** A schema's type in a few words: `string (uuid)`, `integer`, `RunStatus`. */
function typeText(doc: unknown, schema: Record<string, unknown> | undefined): string {
  if (!schema) return "";
  if (typeof schema.$ref === "string") return schema.$ref.split("/").pop() ?? "";
  const resolved = resolve(doc, schema as never) as Record<string, unknown> | undefined;
  const type = Array.isArray(resolved?.type) ? (resolved!.type as string[]).filter((t) => t !== "null").join(" | ") : String(resolved?.type ?? "");
  if (Array.isArray(resolved?.enum)) return (resolved!.enum as string[]).join(" | ");
  return resolved?.format ? `${type} (${String(resolved.format)})` : type;
}

/** A body as people read it: indented JSON, or the text (cut at 100,000 characters). */
function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text.length > 100_000 ? `${text.slice(0, 100_000)}\n…` : text;
  }
}

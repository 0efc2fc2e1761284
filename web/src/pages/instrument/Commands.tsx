import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type Schemas } from "../../api/client";
import { Problem } from "../../ui/Problem";
import { formFields, readConfiguration, type FormField } from "../configurationForm";
import { ConfigField } from "../ConfigField";
import { relativeTime, statusLabel } from "../format";

type Command = Schemas["Command"];
type CommandInfo = Schemas["CommandInfo"];

/** Commands still on their way: the list is read again often while there are any. */
const OPEN: Command["status"][] = ["queued", "sent", "acknowledged"];
export const FAST_POLL_MS = 1500;
const SLOW_POLL_MS = 15_000;

/** The steps of a command, in order; the last is how it ended. */
export function steps(command: Command): { label: string; at: string | null | undefined; state: "done" | "current" | "todo" | "bad" }[] {
  const ended = command.status === "completed" || command.status === "failed" || command.status === "expired";
  const at = [command.createdAt, command.sentAt, command.acknowledgedAt];
  // An ended command reached only the steps it has a time for (one that
  // expired while queued was never sent).
  const reached = (index: number) => (ended ? !!at[index] : OPEN.indexOf(command.status) >= index);
  const last =
    command.status === "failed"
      ? { label: "Failed", at: command.completedAt, state: "bad" as const }
      : command.status === "expired"
        ? { label: "Expired", at: command.expiresAt, state: "bad" as const }
        : { label: "Completed", at: command.completedAt, state: command.status === "completed" ? ("done" as const) : ("todo" as const) };
  const labels = ["Queued", "Sent", "Acknowledged"];
  return [
    ...labels.map((label, index) => ({
      label,
      at: at[index],
      state: reached(index) ? (command.status === OPEN[index] ? ("current" as const) : ("done" as const)) : ("todo" as const),
    })),
    last,
  ];
}

/**
 * The instrument's control commands: send one (its parameters from the
 * type's specification, then a confirmation step that says what will
 * happen), and follow each through queued → sent → acknowledged →
 * completed or failed. The list is read again every 1.5 s while a command
 * is on its way.
 */
export function Commands({ instrument, status, commands, canControl }: {
  instrument: Schemas["Instrument"];
  status: string;
  commands: CommandInfo[];
  canControl: boolean;
}) {
  const client = useQueryClient();
  const list = useQuery({
    queryKey: ["instrument-commands", instrument.id],
    queryFn: () =>
      call(() => api.GET("/api/v1/instruments/{id}/commands", { params: { path: { id: instrument.id }, query: { limit: 10 } } })),
    refetchInterval: (query) =>
      query.state.data?.items.some((c) => OPEN.includes(c.status)) ? FAST_POLL_MS : SLOW_POLL_MS,
  });

  return (
    <section className="panel" aria-labelledby="commands-title">
      <h2 id="commands-title">Commands</h2>
      {canControl && !instrument.deletedAt && (
        <SendCommand instrument={instrument} status={status} commands={commands}
          onSent={() => client.invalidateQueries({ queryKey: ["instrument-commands", instrument.id] })} />
      )}
      {list.isPending && <p role="status">Loading commands…</p>}
      {list.isError && <Problem error={list.error} title="The commands could not be loaded" />}
      {list.isSuccess && list.data.items.length === 0 && <p className="muted">No command has been sent to this instrument.</p>}
      {list.isSuccess && list.data.items.length > 0 && (
        <ol className="commands" aria-label="Recent commands">
          {list.data.items.map((command) => (
            <li key={command.id} className="command" data-command={command.id} data-status={command.status}>
              <div className="command-head">
                <strong>{command.command}</strong>
                {Object.keys(command.parameters ?? {}).length > 0 && (
                  <code className="small">{JSON.stringify(command.parameters)}</code>
                )}
                <span className={`badge command-${command.status}`}>{statusLabel(command.status)}</span>
                <time className="muted small" dateTime={command.createdAt}>{relativeTime(command.createdAt)}</time>
              </div>
              <ol className="steps" aria-label={`Progress of ${command.command}`}>
                {steps(command).map((step) => (
                  <li key={step.label} className={`step step-${step.state}`} aria-current={step.state === "current" ? "step" : undefined}>
                    {step.label}
                    {step.at && step.state !== "todo" && (
                      <time className="muted small" dateTime={step.at}> {new Date(step.at).toLocaleTimeString()}</time>
                    )}
                  </li>
                ))}
              </ol>
              {command.error && <p className="field-error">{command.error}</p>}
              {command.result && Object.keys(command.result).length > 0 && (
                <p className="muted small">Result: <code>{JSON.stringify(command.result)}</code></p>
              )}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function SendCommand({ instrument, status, commands, onSent }: {
  instrument: Schemas["Instrument"];
  status: string;
  commands: CommandInfo[];
  onSent: () => void;
}) {
  const [name, setName] = useState("");
  const [review, setReview] = useState<{ parameters: Record<string, unknown>; key: string } | null>(null);
  const chosen = commands.find((c) => c.name === name);
  const fields: FormField[] = chosen ? formFields(chosen.parameters) : [];
  const send = useMutation({
    mutationFn: ({ parameters, key }: { parameters: Record<string, unknown>; key: string }) =>
      call(() =>
        api.POST("/api/v1/instruments/{id}/control", {
          params: { path: { id: instrument.id }, header: { "Idempotency-Key": key } },
          body: { command: name, ...(Object.keys(parameters).length > 0 ? { parameters } : {}) },
        }),
      ),
    onSuccess: () => {
      setReview(null);
      setName("");
      onSent();
    },
  });

  const prepare = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const parameters: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(readConfiguration(fields, form))) parameters[key] = value;
    send.reset();
    // One key per reviewed command: sending again after a lost answer cannot run it twice.
    setReview({ parameters, key: crypto.randomUUID() });
  };

  if (review && chosen) {
    return (
      <div className="confirm" role="group" aria-labelledby="confirm-command-title">
        <h3 id="confirm-command-title">Send “{chosen.name}” to {instrument.name}?</h3>
        <p>{chosen.description}</p>
        {Object.keys(review.parameters).length > 0 && (
          <dl className="facts">
            {Object.entries(review.parameters).map(([key, value]) => (
              <div key={key} className="fact"><dt>{fields.find((f) => f.name === key)?.label ?? key}</dt><dd>{String(value)}</dd></div>
            ))}
          </dl>
        )}
        <p className="muted small">It waits for the instrument's bridge, which runs it on the instrument.</p>
        {send.isError && <Problem error={send.error} title="The command was not sent" />}
        <div className="actions start">
          <button type="button" className="secondary" onClick={() => setReview(null)}>Back</button>
          <button type="button" disabled={send.isPending} onClick={() => send.mutate(review)}>
            {send.isPending ? "Sending…" : `Send ${chosen.name}`}
          </button>
        </div>
      </div>
    );
  }

  const allowed = (c: CommandInfo) => c.allowedIn.includes(status as CommandInfo["allowedIn"][number]);
  return (
    <form className="form inline-form" onSubmit={prepare} noValidate aria-label="Send a command">
      <div className="field">
        <label htmlFor="command-name">Command</label>
        <select id="command-name" value={name} onChange={(e) => setName(e.target.value)}
          aria-describedby={chosen ? "command-help" : undefined}>
          <option value="">Choose a command…</option>
          {commands.map((c) => (
            <option key={c.name} value={c.name} disabled={!allowed(c)}>
              {c.name}{allowed(c) ? "" : ` (only when ${c.allowedIn.map(statusLabel).join(", ").toLowerCase()})`}
            </option>
          ))}
        </select>
        {chosen && <p id="command-help" className="muted small">{chosen.description}</p>}
      </div>
      {fields.map((field) => (
        <ConfigField key={`${name}.${field.name}`} field={field} required={chosen?.required.includes(field.name)} />
      ))}
      <div className="actions start">
        <button type="submit" disabled={!chosen}>Review…</button>
      </div>
    </form>
  );
}

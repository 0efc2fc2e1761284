import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ApiFailure, call, type Schemas } from "../../api/client";
import { Dialog } from "../../ui/Dialog";
import { Problem } from "../../ui/Problem";
import { ConfigField } from "../ConfigField";
import { formFields, readConfiguration, type FormField } from "../configurationForm";
import { changes, conflicts, flatten, patchBody, TOP_FIELDS, type Conflict, type Flat } from "./edit";

type Instrument = Schemas["Instrument"];

const TOP_LABELS: Record<string, string> = {
  name: "Name", location: "Location", model: "Model", serialNumber: "Serial number", firmware: "Firmware",
};

/**
 * The edit dialog. It sends the version it was opened with (`If-Match`);
 * when someone changed the instrument meanwhile (412), it shows what they
 * changed, beside this edit's values, and offers to apply this edit over
 * theirs or to start again from the current values.
 */
export function EditInstrument({ instrument, schema, onClose }: {
  instrument: Instrument;
  schema: unknown;
  onClose: () => void;
}) {
  const client = useQueryClient();
  const [base, setBase] = useState(instrument);
  const [conflict, setConflict] = useState<{ latest: Instrument; mine: Flat; list: Conflict[] } | null>(null);
  const [nothing, setNothing] = useState(false);
  const [reloadFailed, setReloadFailed] = useState<unknown>(null);
  const fields = formFields(schema);
  const label = (field: string) =>
    TOP_LABELS[field] ?? fields.find((f) => `configuration.${f.name}` === field)?.label ?? field;

  const save = useMutation({
    mutationFn: ({ over, mine }: { over: Instrument; mine: Flat }) =>
      call(() =>
        api.PUT("/api/v1/instruments/{id}", {
          params: { path: { id: instrument.id }, header: { "If-Match": `"${over.version}"` } },
          body: patchBody(over, mine) as never,
        }),
      ),
    onSuccess: (saved) => {
      client.setQueryData(["instrument", instrument.id], saved);
      void client.invalidateQueries({ queryKey: ["instruments"] });
      onClose();
    },
    onError: async (error, { over, mine }) => {
      if (!isStale(error)) return;
      try {
        const latest = await call(() => api.GET("/api/v1/instruments/{id}", { params: { path: { id: instrument.id } } }));
        client.setQueryData(["instrument", instrument.id], latest);
        setConflict({ latest, mine, list: conflicts(flatten(over), flatten(latest), mine) });
      } catch (failure) {
        setReloadFailed(failure);
      }
    },
  });

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const mine = changes(flatten(base), read(base, fields, form));
    if (Object.keys(mine).length === 0) {
      setNothing(true);
      return;
    }
    setNothing(false);
    setReloadFailed(null);
    save.mutate({ over: base, mine });
  };

  if (conflict) {
    return (
      <Dialog title="Someone else changed this instrument" onClose={onClose}
        description={<p>While you were editing, these fields were changed. Nothing of yours is saved yet.</p>}>
        <table className="table conflicts">
          <thead>
            <tr><th scope="col">Field</th><th scope="col">When you opened it</th><th scope="col">Now</th><th scope="col">Yours</th></tr>
          </thead>
          <tbody>
            {conflict.list.map((c) => (
              <tr key={c.field} className={"mine" in c ? "clash" : undefined}>
                <th scope="row">{label(c.field)}</th>
                <td>{shown(c.was)}</td>
                <td>{shown(c.now)}</td>
                <td>{"mine" in c ? shown(c.mine) : <span className="muted">unchanged</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted small">Your changes: {Object.keys(conflict.mine).map(label).join(", ")}.</p>
        {save.isError && !isStale(save.error) && <Problem error={save.error} title="The instrument was not changed" />}
        <div className="actions">
          <button type="button" className="secondary" onClick={() => { setBase(conflict.latest); setConflict(null); save.reset(); }}>
            Start again from the current values
          </button>
          <button type="button" disabled={save.isPending}
            onClick={() => { const { latest, mine } = conflict; setBase(latest); setConflict(null); save.mutate({ over: latest, mine }); }}>
            Apply my changes over theirs
          </button>
        </div>
      </Dialog>
    );
  }

  const failure = save.error instanceof ApiFailure && !isStale(save.error) ? save.error : null;
  return (
    <Dialog title={`Edit ${base.name}`} onClose={onClose}>
      {/* Remounted from the new base after a conflict, so the inputs show it. */}
      <form key={base.version} className="form" onSubmit={submit} noValidate>
        {TOP_FIELDS.map((name) => (
          <div className="field" key={name}>
            <label htmlFor={`edit-${name}`}>{TOP_LABELS[name]}{name === "name" ? "" : " (optional)"}</label>
            <input id={`edit-${name}`} name={name} defaultValue={base[name] ?? ""} required={name === "name"}
              aria-invalid={failure?.forField(name) ? true : undefined}
              aria-describedby={failure?.forField(name) ? `edit-${name}-error` : undefined} />
            {failure?.forField(name) && <p id={`edit-${name}-error`} className="field-error">{failure.forField(name)}</p>}
          </div>
        ))}
        {fields.length > 0 && (
          <fieldset>
            <legend>Settings</legend>
            {fields.map((field) => (
              <ConfigField key={field.name} field={field} error={failure?.forField(`configuration.${field.name}`)}
                value={(base.configuration as Record<string, unknown> | null)?.[field.name]} />
            ))}
          </fieldset>
        )}
        {nothing && <p className="notice" role="status">Nothing was changed.</p>}
        {failure && <Problem error={failure} title="The instrument was not changed" />}
        {reloadFailed !== null && (
          <Problem error={reloadFailed} title="Someone else changed the instrument, and its current values could not be read" />
        )}
        <div className="actions">
          <button type="button" className="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={save.isPending}>{save.isPending ? "Saving…" : "Save changes"}</button>
        </div>
      </form>
    </Dialog>
  );
}

const isStale = (error: unknown) => error instanceof ApiFailure && error.code === "PRECONDITION_FAILED";

/** The form's values over `base`, flat (an emptied optional field is null). */
function read(base: Instrument, fields: FormField[], form: FormData): Flat {
  const out = flatten(base);
  for (const name of TOP_FIELDS) {
    const text = String(form.get(name) ?? "").trim();
    out[name] = text === "" && name !== "name" ? null : text;
  }
  const configuration = readConfiguration(fields, form);
  for (const field of fields) {
    const key = `configuration.${field.name}`;
    if (field.input === "checkbox") {
      // An unticked box is false only where it was true: an unset field stays unset.
      out[key] = configuration[field.name] === true ? true : out[key] === true ? false : (out[key] ?? null);
    } else {
      out[key] = configuration[field.name] ?? null;
    }
  }
  return out;
}

function shown(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

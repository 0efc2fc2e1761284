import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiFailure, call } from "../api/client";
import { Problem } from "../ui/Problem";
import { ConfigField } from "./ConfigField";
import { formFields, readConfiguration } from "./configurationForm";

/**
 * The "Add instrument" dialog: a form generated from the type's
 * configuration schema. The dialog is the browser's own modal `<dialog>`
 * (focus kept inside, Escape closes, the page behind inert), which needs
 * no inline style under the app's content security policy. It is open
 * while the address is `/instruments/new` (the caller's `open`), so the
 * link can be shared and the back button closes it.
 */
export function AddInstrument({ open, onClose }: { open: boolean; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);
  const [kind, setKind] = useState("");
  const client = useQueryClient();
  const types = useQuery({
    queryKey: ["instrument-types"],
    queryFn: () => call(() => api.GET("/api/v1/instrument-types")),
    staleTime: Infinity,
    enabled: open,
  });
  const chosen = types.data?.items.find((t) => t.type === kind);
  const fields = chosen ? formFields(chosen.configuration) : [];
  const create = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      // The generated type says which fields exist; the form's values are checked by the API.
      call(() => api.POST("/api/v1/instruments", { body: body as never })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ["instruments"] });
      setKind("");
      onClose();
    },
  });
  const failure = create.error instanceof ApiFailure ? create.error : null;
  const fieldError = (name: string) => failure?.forField(name);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => {
      const value = String(form.get(name) ?? "").trim();
      return value === "" ? undefined : value;
    };
    const configuration = readConfiguration(fields, form);
    create.mutate({
      name: text("name") ?? "",
      type: kind,
      location: text("location"),
      model: text("model"),
      serialNumber: text("serialNumber"),
      ...(Object.keys(configuration).length > 0 ? { configuration } : {}),
    });
  };

  const close = () => {
    create.reset();
    if (open) onClose();
  };

  return (
    <>
      <dialog ref={dialog} className="dialog" aria-labelledby="add-instrument-title" aria-describedby="add-instrument-help"
        onClose={close}>
        {open && (
          <>
            <h2 id="add-instrument-title">Add an instrument</h2>
            <p id="add-instrument-help" className="muted">
              The settings offered depend on its type. Everything but the name and type can be changed later.
            </p>
            {types.isPending && <p role="status">Loading the instrument types…</p>}
            {types.isError && <Problem error={types.error} title="The instrument types could not be loaded" />}
            {types.isSuccess && (
              <form onSubmit={submit} noValidate className="form">
                <Text name="name" label="Name" required error={fieldError("name")} />
                <label htmlFor="type">Type</label>
                <select id="type" name="type" required value={kind} onChange={(e) => setKind(e.target.value)}
                  aria-invalid={fieldError("type") ? true : undefined}>
                  <option value="">Choose a type…</option>
                  {types.data.items.map((t) => <option key={t.type} value={t.type}>{t.label}</option>)}
                </select>
                {fieldError("type") && <p className="field-error">{fieldError("type")}</p>}
                <Text name="location" label="Location" error={fieldError("location")} />
                <Text name="model" label="Model" error={fieldError("model")} />
                <Text name="serialNumber" label="Serial number" error={fieldError("serialNumber")} />
                {fields.length > 0 && (
                  <fieldset>
                    <legend>{chosen?.label} settings</legend>
                    {fields.map((field) => (
                      <ConfigField key={`${kind}.${field.name}`} field={field} error={fieldError(`configuration.${field.name}`)} />
                    ))}
                  </fieldset>
                )}
                {failure && failure.details.length === 0 && <Problem error={failure} title="The instrument was not added" />}
                {failure && failure.details.length > 0 && (
                  <p className="form-error" role="alert">Check the fields marked above.</p>
                )}
                <div className="actions">
                  <button type="button" className="secondary" onClick={close}>Cancel</button>
                  <button type="submit" disabled={create.isPending || kind === ""}>
                    {create.isPending ? "Adding…" : "Add instrument"}
                  </button>
                </div>
              </form>
            )}
          </>
        )}
      </dialog>
    </>
  );
}

function Text({ name, label, required, error }: { name: string; label: string; required?: boolean; error?: string | undefined }) {
  return (
    <>
      <label htmlFor={name}>{label}{required ? "" : " (optional)"}</label>
      <input id={name} name={name} required={required} aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${name}-error` : undefined} />
      {error && <p id={`${name}-error`} className="field-error">{error}</p>}
    </>
  );
}

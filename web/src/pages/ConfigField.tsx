import type { FormField } from "./configurationForm";

/**
 * One field of a form generated from a JSON Schema (an instrument type's
 * configuration, a command's parameters), named `configuration.<name>` as
 * `readConfiguration` reads it, with the API's message for it if any.
 */
export function ConfigField({ field, error, value, required }: {
  field: FormField;
  error?: string | undefined;
  /** The value it starts with (editing). */
  value?: unknown;
  required?: boolean | undefined;
}) {
  const id = `configuration-${field.name}`;
  const described = error ? `${id}-error` : field.hint ? `${id}-hint` : undefined;
  const common = {
    id, name: `configuration.${field.name}`, required, "aria-invalid": error ? true : undefined, "aria-describedby": described,
  };
  const text = value === undefined || value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value);
  let input;
  switch (field.input) {
    case "select":
      input = (
        <select {...common} defaultValue={text}>
          <option value="">Not set</option>
          {field.options.map((o) => <option key={String(o)} value={String(o)}>{String(o)}</option>)}
        </select>
      );
      break;
    case "checkbox":
      input = <input type="checkbox" {...common} value="true" defaultChecked={value === true} />;
      break;
    case "number":
      input = <input type="number" {...common} min={field.min} max={field.max} step={field.integer ? 1 : "any"} defaultValue={text} />;
      break;
    case "datetime":
      input = <input type="datetime-local" {...common} defaultValue={typeof value === "string" ? localInput(value) : ""} />;
      break;
    default:
      input = <input type="text" {...common} maxLength={field.input === "text" ? field.maxLength : undefined} defaultValue={text} />;
  }
  return (
    <div className={field.input === "checkbox" ? "check" : "field"}>
      <label htmlFor={id}>{field.label}</label>
      {input}
      {field.hint && !error && <p id={`${id}-hint`} className="muted small">{field.hint}</p>}
      {error && <p id={`${id}-error`} className="field-error">{error}</p>}
    </div>
  );
}

/** An RFC 3339 time as a `datetime-local` input wants it, in local time. */
export function localInput(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

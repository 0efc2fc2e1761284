import type { InputHTMLAttributes } from "react";
import { ApiFailure } from "../api/client";

type Props = InputHTMLAttributes<HTMLInputElement> & {
  name: string;
  label: string;
  /** The failure whose message for `name` (if any) is shown under the input. */
  failure?: unknown;
  /** Shown under the input when there is no error for it. */
  hint?: string;
};

/** A labelled input with the API's message for its field, tied to it for screen readers. */
export function Field({ name, label, failure, hint, id, ...input }: Props) {
  const inputId = id ?? name;
  const error = failure instanceof ApiFailure ? failure.forField(name) : undefined;
  const describedBy = error ? `${inputId}-error` : hint ? `${inputId}-hint` : undefined;
  return (
    <>
      <label htmlFor={inputId}>{label}</label>
      <input id={inputId} name={name} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...input} />
      {error ? (
        <p id={`${inputId}-error`} className="field-error">{error}</p>
      ) : (
        hint && <p id={`${inputId}-hint`} className="muted small">{hint}</p>
      )}
    </>
  );
}

/** The named fields of a form as strings (trimmed, but passwords as typed; "" when absent). */
export function values<K extends string>(form: HTMLFormElement, names: readonly K[]): Record<K, string> {
  const data = new FormData(form);
  const out = {} as Record<K, string>;
  for (const name of names) {
    const text = String(data.get(name) ?? "");
    out[name] = name.toLowerCase().includes("password") ? text : text.trim();
  }
  return out;
}

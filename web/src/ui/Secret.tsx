import { useState } from "react";

/**
 * Something shown once (a new API key, a join token, a command holding
 * one): in a read-only field a person can select, with a button that
 * copies it and says whether that worked.
 */
export function ShownOnce({ label, value, id, multiline = false }: { label: string; value: string; id: string; multiline?: boolean }) {
  const [copied, setCopied] = useState<"idle" | "done" | "failed">("idle");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied("done");
    } catch {
      // No clipboard (an insecure origin, a refused permission): the
      // field is selected for a manual copy.
      (document.getElementById(id) as HTMLInputElement | HTMLTextAreaElement | null)?.select();
      setCopied("failed");
    }
  };
  return (
    <div className="shown-once">
      <label htmlFor={id}>{label}</label>
      <div className="shown-once-row">
        {multiline ? (
          <textarea id={id} readOnly value={value} rows={3} spellCheck={false} onFocus={(e) => e.currentTarget.select()} />
        ) : (
          <input id={id} readOnly value={value} spellCheck={false} onFocus={(e) => e.currentTarget.select()} />
        )}
        <button type="button" className="secondary" onClick={() => void copy()}>Copy</button>
      </div>
      <p className="muted small" role="status">
        {copied === "done" ? "Copied." : copied === "failed" ? "Copying is not allowed here: it is selected, copy it with your keyboard." : ""}
      </p>
    </div>
  );
}

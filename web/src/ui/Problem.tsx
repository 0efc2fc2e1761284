import { ApiFailure } from "../api/client";

/**
 * An error as the API explained it, with the request id support needs.
 * `fields`: those a form shows the API's message beside; a refusal only
 * about them shows nothing more here, and the others are listed.
 */
export function Problem({ error, title, fields }: { error: unknown; title?: string; fields?: string[] }) {
  const failure = error instanceof ApiFailure ? error : null;
  const others = failure && fields ? failure.details.filter((d) => !fields.includes(d.field)) : [];
  if (failure && fields && failure.details.length > 0 && others.length === 0) return null;
  // The app's own plain errors say what happened; a TypeError and the
  // like say nothing a person can act on.
  const own = !failure && error instanceof Error && error.constructor === Error ? error.message : null;
  return (
    <div className="problem" role="alert">
      <strong>{title ?? "Something went wrong"}</strong>
      <p>{failure?.message ?? own ?? "An unexpected error occurred."}</p>
      {others.length > 0 && (
        <ul>
          {others.map((d) => <li key={`${d.field}-${d.message}`}><code>{d.field}</code>: {d.message}</li>)}
        </ul>
      )}
      {failure?.retryAfterSecs !== undefined && <p>Try again in {wait(failure.retryAfterSecs)}.</p>}
      {failure?.requestId && (
        <p className="muted small">
          Request id: <code>{failure.requestId}</code>
        </p>
      )}
    </div>
  );
}

/** "45 seconds", "3 minutes". */
export function wait(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

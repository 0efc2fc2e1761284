import { ApiFailure } from "../api/client";

/** An error as the API explained it, with the request id support needs. */
export function Problem({ error, title }: { error: unknown; title?: string }) {
  const failure = error instanceof ApiFailure ? error : null;
  return (
    <div className="problem" role="alert">
      <strong>{title ?? "Something went wrong"}</strong>
      <p>{failure?.message ?? "An unexpected error occurred."}</p>
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

import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { api, call, type Schemas } from "../../api/client";
import { Problem } from "../../ui/Problem";
import { verdict } from "./audit";

/**
 * Verifies the whole chain: one request after another (each walks at
 * most 20,000 events and hands back a cursor) until the walk is complete,
 * then says what it found in plain words.
 */
export function VerifyPanel() {
  const [progress, setProgress] = useState<Schemas["ChainVerification"] | null>(null);
  const [checkedAt, setCheckedAt] = useState<Date | null>(null);
  const verify = useMutation({
    mutationFn: async () => {
      setProgress(null);
      let answer = await call(() => api.GET("/api/audit/verify"));
      while (!answer.complete && answer.resume && !answer.failure) {
        setProgress(answer);
        const resume = answer.resume;
        answer = await call(() => api.GET("/api/audit/verify", { params: { query: { resume } } }));
      }
      return answer;
    },
    onSuccess: (answer) => {
      setProgress(answer);
      setCheckedAt(new Date());
    },
  });
  const said = progress ? verdict(progress) : null;
  return (
    <section className="panel" aria-labelledby="verify-title">
      <div className="panel-head">
        <h2 id="verify-title">Chain verification</h2>
        <button type="button" onClick={() => verify.mutate()} disabled={verify.isPending}>
          {verify.isPending ? "Verifying…" : "Verify the chain"}
        </button>
      </div>
      {!said && !verify.isError && (
        <p className="muted">Recomputes every event's hash, checks its signature and its link to the one before, and compares the signed checkpoints.</p>
      )}
      <div role="status" aria-live="polite">
        {said && (
          <div className={`verdict verdict-${said.tone}`} data-verdict={said.tone}>
            <p><strong>{said.headline}</strong></p>
            <p>{said.detail}</p>
            {progress?.complete && progress.headHash && (
              <p className="small">Head hash <code className="break">{progress.headHash}</code></p>
            )}
            {checkedAt && progress?.complete && <p className="muted small">Checked {checkedAt.toLocaleString()}.</p>}
          </div>
        )}
      </div>
      {verify.isError && <Problem error={verify.error} title="The chain could not be verified" />}
    </section>
  );
}

import type { ReactNode } from "react";

/** The centred card of the pages before sign-in. */
export function AuthCard({ titleId, children }: { titleId: string; children: ReactNode }) {
  return (
    <div className="auth-page">
      <section className="auth-card" aria-labelledby={titleId}>
        <div className="brand large">
          <img src="/favicon.svg" alt="" width="32" height="32" />
          Antevus
        </div>
        {children}
      </section>
    </div>
  );
}

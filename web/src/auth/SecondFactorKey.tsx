import { lazy, Suspense, useState } from "react";
import type { Schemas } from "../api/client";

// Only the few who set up a factor need the QR encoder: its own chunk.
const QrCode = lazy(() => import("../ui/QrCode").then((m) => ({ default: m.QrCode })));

/** A new authenticator key: its QR code to scan, and the key to type in instead. */
export function SecondFactorKey({ enrolment }: { enrolment: Schemas["MfaEnrolment"] }) {
  return (
    <div className="enrolment">
      <Suspense fallback={<div className="qr qr-loading" role="status">Drawing the QR code…</div>}>
        <QrCode text={enrolment.otpauthUri} label="QR code of your new authenticator key" />
      </Suspense>
      <div>
        <p>Scan the code with an authenticator app (for example Google Authenticator, Microsoft Authenticator or 1Password).</p>
        <p className="small">
          Cannot scan? Enter this key: <code className="secret">{groups(enrolment.secret)}</code>
          <span className="muted"> ({enrolment.digits} digits, every {enrolment.period} seconds)</span>
        </p>
      </div>
    </div>
  );
}

/** A base32 key in groups of four, easier to type. */
export function groups(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, "$1 ");
}

/** Recovery codes, shown once, with a button that copies them. */
export function RecoveryCodes({ codes }: { codes: string[] }) {
  const [copied, setCopied] = useState<boolean | null>(null);
  const copy = () =>
    navigator.clipboard.writeText(codes.join("\n")).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  return (
    <>
      <p>Each code signs you in once if you lose your authenticator. Store them somewhere safe: they are shown only now.</p>
      <ul className="codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}><code>{c}</code></li>
        ))}
      </ul>
      <p>
        <button type="button" className="secondary" onClick={() => void copy()}>Copy the codes</button>{" "}
        <span role="status" className="small muted">
          {copied === true ? "Copied." : copied === false ? "This browser did not allow copying; select and copy them instead." : ""}
        </span>
      </p>
    </>
  );
}

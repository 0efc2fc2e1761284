import { useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import { api, ApiFailure, call, type Schemas } from "../api/client";
import { session } from "../auth/session";
import { RecoveryCodes, SecondFactorKey } from "../auth/SecondFactorKey";
import { AuthCard } from "../ui/AuthCard";
import { Field } from "../ui/Field";
import { wait } from "../ui/Problem";

type Step =
  | { kind: "password" }
  | { kind: "verify"; challengeToken: string }
  | { kind: "enroll"; challengeToken: string; enrolment?: Schemas["MfaEnrolment"] }
  | { kind: "recovery"; codes: string[] };

/** What a refused sign-in means to the person, without telling whether the account exists. */
export function explain(error: unknown): string {
  if (!(error instanceof ApiFailure)) return "Signing in failed. Try again.";
  switch (error.code) {
    case "AUTH_INVALID_CREDENTIALS":
      return "The e-mail or password is not right, or the account is locked. After repeated failures an account is locked for a while; try again later or reset your password.";
    case "RATE_LIMIT_EXCEEDED":
      return error.retryAfterSecs !== undefined
        ? `Too many attempts. Try again in ${wait(error.retryAfterSecs)}.`
        : "Too many attempts. Wait a moment and try again.";
    case "AUTH_TOKEN_EXPIRED":
    case "AUTH_TOKEN_INVALID":
      return "This sign-in took too long. Start again with your e-mail and password.";
    case "VALIDATION_ERROR":
      return error.details.length > 0 ? "Check the marked fields." : error.message;
    default:
      return error.message;
  }
}

export function SignIn() {
  const navigate = useNavigate();
  const location = useLocation();
  const state = location.state as { from?: string; notice?: string; email?: string } | null;
  const from = state?.from ?? "/";
  const [step, setStep] = useState<Step>({ kind: "password" });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const signedOut = sessionStorage.getItem("antevus.signedOut");

  const done = (answer: Schemas["TokenReply"]) => {
    sessionStorage.removeItem("antevus.signedOut");
    session.accept(answer);
    if (answer.recoveryCodes && answer.recoveryCodes.length > 0) {
      setStep({ kind: "recovery", codes: answer.recoveryCodes });
    } else {
      navigate(from);
    }
  };

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const onPassword = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    void run(async () => {
      const answer = await call(() =>
        api.POST("/api/auth/login", {
          body: { email: String(form.get("email")), password: String(form.get("password")) },
        }),
      );
      if ("mfaRequired" in answer && answer.mfaRequired) {
        setStep(
          answer.purpose === "enroll"
            ? { kind: "enroll", challengeToken: answer.challengeToken }
            : { kind: "verify", challengeToken: answer.challengeToken },
        );
      } else {
        done(answer as Schemas["TokenReply"]);
      }
    });
  };

  const onCode = (event: FormEvent<HTMLFormElement>, challengeToken: string) => {
    event.preventDefault();
    const code = String(new FormData(event.currentTarget).get("code") ?? "").trim();
    const recovery = !/^\d{6}$/.test(code);
    void run(async () => {
      done(
        await call(() =>
          api.POST("/api/auth/mfa/verify", {
            body: recovery ? { challengeToken, recoveryCode: code } : { challengeToken, code },
          }),
        ),
      );
    });
  };

  const startEnrolment = (challengeToken: string) =>
    void run(async () => {
      const enrolment = await call(() => api.POST("/api/auth/mfa/enroll", { body: { challengeToken } }));
      setStep({ kind: "enroll", challengeToken, enrolment });
    });

  const onConfirm = (event: FormEvent<HTMLFormElement>, challengeToken: string) => {
    event.preventDefault();
    const code = String(new FormData(event.currentTarget).get("code") ?? "").trim();
    void run(async () => {
      const answer = await call(() => api.POST("/api/auth/mfa/confirm", { body: { code, challengeToken } }));
      // At a login the answer is the session's tokens.
      if ("accessToken" in answer) done(answer);
    });
  };

  return (
    <AuthCard titleId="sign-in-title">
      {step.kind === "password" && (
        <form onSubmit={onPassword} noValidate>
          <h1 id="sign-in-title">Sign in</h1>
          {signedOut === "inactivity" && (
            <p className="notice" role="status">
              You were signed out after a period of inactivity.
            </p>
          )}
          {state?.notice && (
            <p className="notice" role="status">
              {state.notice}
            </p>
          )}
          <Field name="email" label="E-mail" type="email" autoComplete="username" required autoFocus
            defaultValue={state?.email} failure={error} />
          <Field name="password" label="Password" type="password" autoComplete="current-password" required failure={error} />
          {error !== null && <p className="form-error" role="alert">{explain(error)}</p>}
          <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
          <p className="small auth-links">
            <Link to="/forgot-password">Forgot your password?</Link>
            <Link to="/signup">Open a new organization</Link>
          </p>
        </form>
      )}
      {step.kind === "verify" && (
        <form onSubmit={(e) => onCode(e, step.challengeToken)} noValidate>
          <h1 id="sign-in-title">Second factor</h1>
          <p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
          <Field name="code" label="Code" inputMode="numeric" autoComplete="one-time-code" required autoFocus failure={error} />
          {error !== null && <p className="form-error" role="alert">{explain(error)}</p>}
          <button type="submit" disabled={busy}>{busy ? "Checking…" : "Continue"}</button>
          <button type="button" className="link" onClick={() => setStep({ kind: "password" })}>
            Start again
          </button>
        </form>
      )}
      {step.kind === "enroll" && (
        <div>
          <h1 id="sign-in-title">Set up a second factor</h1>
          <p>Your role requires a second factor. Add Antevus to an authenticator app, then enter the code it shows.</p>
          {!step.enrolment ? (
            <button type="button" disabled={busy} onClick={() => startEnrolment(step.challengeToken)}>
              Create my key
            </button>
          ) : (
            <form onSubmit={(e) => onConfirm(e, step.challengeToken)} noValidate>
              <SecondFactorKey enrolment={step.enrolment} />
              <Field name="code" label="Code from the app" inputMode="numeric" autoComplete="one-time-code" required autoFocus failure={error} />
              <button type="submit" disabled={busy}>Confirm</button>
            </form>
          )}
          {error !== null && <p className="form-error" role="alert">{explain(error)}</p>}
        </div>
      )}
      {step.kind === "recovery" && (
        <div>
          <h1 id="sign-in-title">Your recovery codes</h1>
          <RecoveryCodes codes={step.codes} />
          <button type="button" onClick={() => navigate(from)}>I have stored them</button>
        </div>
      )}
    </AuthCard>
  );
}

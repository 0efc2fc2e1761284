// The pages before sign-in that the mailed links open: opening a new
// organization (and confirming its address), accepting an invitation, and
// resetting a forgotten password. Their wording never says whether an
// address has an account; the API's answers don't either.
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, ApiFailure, call, type Schemas } from "../api/client";
import { session } from "../auth/session";
import { AuthCard } from "../ui/AuthCard";
import { Field, values } from "../ui/Field";
import { explain } from "./SignIn";

const PASSWORD_HINT = "At least 8 characters, not a common password.";

/** Runs one request at a time, keeping its failure for the form. */
function useSubmit() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    void work()
      .catch(setError)
      .finally(() => setBusy(false));
  };
  return { error, busy, submit };
}

/** What a refusal on these pages means, in words (fields are shown by field). */
function FormError({ error, invalidToken }: { error: unknown; invalidToken?: string }) {
  if (error === null) return null;
  const tokenRefused =
    error instanceof ApiFailure && (error.forField("token") ?? error.forField("invitationToken")) !== undefined;
  const text = invalidToken && tokenRefused ? invalidToken : explain(error);
  return <p className="form-error" role="alert">{text}</p>;
}

/**
 * After an account is created: signs in with the password just chosen, or,
 * when the account's role needs a second factor first, goes to the sign-in
 * page with the address filled in.
 */
async function signInAs(email: string, password: string): Promise<"signed-in" | "sign-in-page"> {
  const answer = await call(() => api.POST("/api/auth/login", { body: { email, password } }));
  if ("accessToken" in answer) {
    session.accept(answer as Schemas["TokenReply"]);
    return "signed-in";
  }
  return "sign-in-page";
}

/** `/signup`: accept an invitation (`?invitation=`), or open a new organization. */
export function SignUp() {
  const [params] = useSearchParams();
  const invitation = params.get("invitation");
  return invitation ? <AcceptInvitation token={invitation} /> : <NewOrganization />;
}

function AcceptInvitation({ token }: { token: string }) {
  const navigate = useNavigate();
  const { error, busy, submit } = useSubmit();
  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = values(event.currentTarget, ["name", "password"]);
    submit(async () => {
      const created = await call<Schemas["SignedUp"] | Schemas["SignupRequested"]>(() =>
        api.POST("/api/auth/signup", { body: { invitationToken: token, name: form.name, password: form.password } }),
      );
      if (!("user" in created)) throw new ApiFailure(0, "UNEXPECTED", created.message);
      const email = created.user.email;
      try {
        if ((await signInAs(email, form.password)) === "signed-in") {
          navigate("/", { replace: true });
          return;
        }
      } catch {
        // The account exists: signing in is the next step either way.
      }
      navigate("/sign-in", { replace: true, state: { email, notice: "Your account is ready. Sign in to continue." } });
    });
  };
  return (
    <AuthCard titleId="invite-title">
      <form onSubmit={onSubmit} noValidate>
        <h1 id="invite-title">Join your laboratory</h1>
        <p>You were invited to Antevus. Choose the name your colleagues see and a password.</p>
        <Field name="name" label="Your name" autoComplete="name" required autoFocus failure={error} />
        <Field name="password" label="Password" type="password" autoComplete="new-password" required
          hint={PASSWORD_HINT} failure={error} />
        <FormError error={error}
          invalidToken="This invitation link is not valid: it may have been used already or have expired (invitations last 7 days). Ask your administrator for a new one." />
        <button type="submit" disabled={busy}>{busy ? "Creating your account…" : "Create my account"}</button>
        <p className="small auth-links">
          <Link to="/sign-in">I already have an account</Link>
        </p>
      </form>
    </AuthCard>
  );
}

function NewOrganization() {
  const { error, busy, submit } = useSubmit();
  const [sentTo, setSentTo] = useState<string | null>(null);
  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = values(event.currentTarget, ["organizationName", "email", "name", "password"]);
    submit(async () => {
      await call<Schemas["SignedUp"] | Schemas["SignupRequested"]>(() =>
        api.POST("/api/auth/signup", {
          body: { organizationName: form.organizationName, email: form.email, name: form.name, password: form.password },
        }),
      );
      setSentTo(form.email);
    });
  };
  if (sentTo !== null) {
    return (
      <AuthCard titleId="signup-title">
        <h1 id="signup-title">Check your e-mail</h1>
        <p role="status">
          We sent a message to <strong>{sentTo}</strong>. Open its link within 24 hours to confirm the address and
          create your organization. If the address already has an account, the message says so instead.
        </p>
        <p className="small auth-links">
          <Link to="/sign-in">Back to sign in</Link>
        </p>
      </AuthCard>
    );
  }
  return (
    <AuthCard titleId="signup-title">
      <form onSubmit={onSubmit} noValidate>
        <h1 id="signup-title">Open a new organization</h1>
        <p>For a laboratory new to Antevus. Joining a colleague's? Ask them for an invitation instead.</p>
        <Field name="organizationName" label="Laboratory or organization" autoComplete="organization" required autoFocus failure={error} />
        <Field name="name" label="Your name" autoComplete="name" required failure={error} />
        <Field name="email" label="Work e-mail" type="email" autoComplete="email" required failure={error} />
        <Field name="password" label="Password" type="password" autoComplete="new-password" required
          hint={PASSWORD_HINT} failure={error} />
        <FormError error={error} />
        <button type="submit" disabled={busy}>{busy ? "Sending…" : "Continue"}</button>
        <p className="small auth-links">
          <Link to="/sign-in">I already have an account</Link>
        </p>
      </form>
    </AuthCard>
  );
}

/** `/signup/confirm?token=`: the mailed link that creates the organization (the password again). */
export function ConfirmSignup() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const navigate = useNavigate();
  const { error, busy, submit } = useSubmit();
  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { password } = values(event.currentTarget, ["password"]);
    submit(async () => {
      const created = await call(() => api.POST("/api/auth/signup/confirm", { body: { token, password } }));
      const email = created.user.email;
      try {
        if ((await signInAs(email, password)) === "signed-in") {
          navigate("/", { replace: true });
          return;
        }
      } catch {
        // The organization exists: signing in is the next step either way.
      }
      navigate("/sign-in", { replace: true, state: { email, notice: "Your organization is ready. Sign in to continue." } });
    });
  };
  return (
    <AuthCard titleId="confirm-title">
      <form onSubmit={onSubmit} noValidate>
        <h1 id="confirm-title">Confirm your organization</h1>
        <p>Your address is confirmed by this link. Enter the password you chose to create the organization; you will be its administrator.</p>
        <Field name="password" label="Password" type="password" autoComplete="current-password" required autoFocus failure={error} />
        <FormError error={error}
          invalidToken="This link is not valid: it may have been used already or have expired (it lasts 24 hours). Start again from “Open a new organization”." />
        <button type="submit" disabled={busy || token === ""}>{busy ? "Creating…" : "Create the organization"}</button>
        <p className="small auth-links">
          <Link to="/signup">Start again</Link>
        </p>
      </form>
    </AuthCard>
  );
}

/** `/forgot-password`: asks for a reset link; the answer is the same for every address. */
export function ForgotPassword() {
  const { error, busy, submit } = useSubmit();
  const [sentTo, setSentTo] = useState<string | null>(null);
  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { email } = values(event.currentTarget, ["email"]);
    submit(async () => {
      await call(() => api.POST("/api/auth/forgot-password", { body: { email } }));
      setSentTo(email);
    });
  };
  return (
    <AuthCard titleId="forgot-title">
      {sentTo !== null ? (
        <>
          <h1 id="forgot-title">Check your e-mail</h1>
          <p role="status">
            If <strong>{sentTo}</strong> has an active account, a link to choose a new password is on its way. It works
            once, within 30 minutes.
          </p>
          <p className="small auth-links">
            <Link to="/sign-in">Back to sign in</Link>
          </p>
        </>
      ) : (
        <form onSubmit={onSubmit} noValidate>
          <h1 id="forgot-title">Reset your password</h1>
          <p>Enter the address you sign in with. We will e-mail a link to choose a new password.</p>
          <Field name="email" label="E-mail" type="email" autoComplete="username" required autoFocus failure={error} />
          <FormError error={error} />
          <button type="submit" disabled={busy}>{busy ? "Sending…" : "Send the link"}</button>
          <p className="small auth-links">
            <Link to="/sign-in">Back to sign in</Link>
          </p>
        </form>
      )}
    </AuthCard>
  );
}

/** `/reset-password?token=`: the mailed link; a new password ends every login. */
export function ResetPassword() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const navigate = useNavigate();
  const { error, busy, submit } = useSubmit();
  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const { password } = values(event.currentTarget, ["password"]);
    submit(async () => {
      await call(() => api.POST("/api/auth/reset-password", { body: { token, password } }));
      navigate("/sign-in", {
        replace: true,
        state: { notice: "Your password is changed and every login has ended. Sign in with the new password." },
      });
    });
  };
  return (
    <AuthCard titleId="reset-title">
      <form onSubmit={onSubmit} noValidate>
        <h1 id="reset-title">Choose a new password</h1>
        <Field name="password" label="New password" type="password" autoComplete="new-password" required autoFocus
          hint={`${PASSWORD_HINT} Every login of the account ends.`} failure={error} />
        <FormError error={error}
          invalidToken="This reset link is not valid: it may have been used already or have expired (it lasts 30 minutes)." />
        <button type="submit" disabled={busy || token === ""}>{busy ? "Saving…" : "Set the new password"}</button>
        <p className="small auth-links">
          <Link to="/forgot-password">Send a new link</Link>
        </p>
      </form>
    </AuthCard>
  );
}

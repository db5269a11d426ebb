import { useState, type FormEvent } from "react";
import { errorMessage } from "../api/client";
import { navigate } from "../router";
import { useAuth } from "../stores/auth";
import { toastSuccess } from "../stores/toasts";

/** The smallest length the UI asks for; the server's policy decides. */
export const MIN_PASSWORD_LENGTH = 8;

/** What is wrong with a new password before it is sent, or null. */
export function passwordProblem(current: string, next: string, confirm: string): string | null {
  if (next.length < MIN_PASSWORD_LENGTH) return `The new password needs at least ${MIN_PASSWORD_LENGTH} characters.`;
  if (next === current) return "The new password must differ from the current one.";
  if (next !== confirm) return "The two new passwords differ.";
  return null;
}

/** Change the password; `forced` when the account must change it before anything else. */
export function PasswordChangePage({ forced = false }: { forced?: boolean }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const problem = passwordProblem(current, next, confirm);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await useAuth.getState().changePassword(current, next);
      toastSuccess("Password changed");
      if (!forced) navigate("/");
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const form = (
    <form onSubmit={submit} aria-label="Change password">
      <h1>{forced ? "Choose a new password" : "Change password"}</h1>
      {forced && <div className="notice">This account must change its password before going on.</div>}
      {error && (
        <div className="error-banner" role="alert">
          {error}
        </div>
      )}
      <label className="field">
        <span className="field-label">Current password</span>
        <input name="current" type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
      </label>
      <label className="field">
        <span className="field-label">New password</span>
        <input name="new" type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} required />
      </label>
      <label className="field">
        <span className="field-label">New password again</span>
        <input name="confirm" type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} required />
      </label>
      <div className="page-actions">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Saving…" : "Change password"}
        </button>
        {forced && (
          <button type="button" onClick={() => void useAuth.getState().logout()}>
            Sign out
          </button>
        )}
      </div>
    </form>
  );
  return forced ? <div className="login">{form}</div> : <div className="panel" style={{ maxWidth: 420 }}>{form}</div>;
}

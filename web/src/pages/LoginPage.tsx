import { useState, type FormEvent } from "react";
import { errorMessage } from "../api/client";
import { useAuth } from "../stores/auth";

export function LoginPage() {
  const notice = useAuth((s) => s.notice);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await useAuth.getState().login(username.trim(), password);
    } catch (err) {
      setError(errorMessage(err));
      setPassword("");
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login">
      <form onSubmit={submit} aria-label="Sign in">
        <h1>dcp</h1>
        {notice && !error && <div className="notice">{notice}</div>}
        {error && (
          <div className="error-banner" role="alert">
            {error}
          </div>
        )}
        <label className="field">
          <span className="field-label">Username or email</span>
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
        </label>
        <label className="field">
          <span className="field-label">Password</span>
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        <button type="submit" className="primary" disabled={busy || !username || !password}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}

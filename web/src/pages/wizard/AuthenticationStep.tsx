// Step 2: how dcp logs in. A key dcp generates (its public key goes into the host's
// authorized_keys), a private key pasted in, or a password. Secrets are sealed by the
// server as soon as the step is submitted and never come back: a resumed wizard only
// knows that some are stored.
import { useRef, useState } from "react";
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Field, fieldError, generalError } from "../../components/Field";
import { toastSuccess } from "../../stores/toasts";
import { AUTH_METHODS, type AuthForm, type AuthMethod, type GeneratedKey } from "./authForm";
import { type ConnectionForm, defaultKeyComment } from "./connectionForm";

export function AuthenticationStep({
  value,
  onChange,
  connection,
  error,
  disabled = false,
}: {
  value: AuthForm;
  onChange: (value: AuthForm) => void;
  /** The connection step's form, for the instructions (user and host). */
  connection: ConnectionForm;
  error?: unknown;
  disabled?: boolean;
}) {
  const stored = value.stored?.method === value.method ? value.stored : null;
  const choose = (method: AuthMethod) => onChange({ ...value, method });

  return (
    <div className="wizard-step" data-testid="step-authentication">
      <fieldset className="wizard-methods" disabled={disabled}>
        <legend className="field-label">Authentication method</legend>
        {AUTH_METHODS.map((method) => (
          <label key={method.value} className={`wizard-method${value.method === method.value ? " selected" : ""}`}>
            <input
              type="radio"
              name="method"
              value={method.value}
              checked={value.method === method.value}
              onChange={() => choose(method.value)}
            />
            <span>
              <strong>{method.label}</strong>
              <span className="field-hint">{method.hint}</span>
            </span>
          </label>
        ))}
      </fieldset>
      {fieldError(error, "method") && <p className="field-message">{fieldError(error, "method")}</p>}

      {value.method === "generated_key" && (
        <GeneratedKeyPanel value={value} onChange={onChange} connection={connection} error={error} disabled={disabled} />
      )}

      {value.method === "imported_key" && (
        <>
          {stored && !value.private_key.trim() && (
            <div className="notice">A private key is saved for this setup. Paste another one only to replace it.</div>
          )}
          <Field
            label="Private key"
            error={fieldError(error, "private_key")}
            hint="OpenSSH (-----BEGIN OPENSSH PRIVATE KEY-----) or PEM. It is sealed on the server and never shown again."
          >
            <textarea
              name="private_key"
              rows={8}
              value={value.private_key}
              onChange={(event) => onChange({ ...value, private_key: event.target.value })}
              disabled={disabled}
              spellCheck={false}
              autoComplete="off"
              placeholder={stored ? "(saved — paste a key to replace it)" : "-----BEGIN OPENSSH PRIVATE KEY-----"}
            />
          </Field>
          <Field label="Passphrase" error={fieldError(error, "passphrase")} hint="Only if the key is encrypted.">
            <input
              name="passphrase"
              type="password"
              value={value.passphrase}
              onChange={(event) => onChange({ ...value, passphrase: event.target.value })}
              disabled={disabled}
              autoComplete="off"
            />
          </Field>
        </>
      )}

      {value.method === "password" && (
        <>
          {stored && !value.password && <div className="notice">A password is saved for this setup. Type another one only to replace it.</div>}
          <Field
            label="Password"
            error={fieldError(error, "password")}
            hint="Sealed on the server. dcp sends it only to the host key you confirm in the next step."
          >
            <input
              name="password"
              type="password"
              value={value.password}
              onChange={(event) => onChange({ ...value, password: event.target.value })}
              disabled={disabled}
              autoComplete="new-password"
              placeholder={stored ? "(saved)" : undefined}
            />
          </Field>
        </>
      )}
    </div>
  );
}

function GeneratedKeyPanel({
  value,
  onChange,
  connection,
  error,
  disabled,
}: {
  value: AuthForm;
  onChange: (value: AuthForm) => void;
  connection: ConnectionForm;
  error?: unknown;
  disabled: boolean;
}) {
  const [comment, setComment] = useState(() => defaultKeyComment(connection));
  const [busy, setBusy] = useState(false);
  const [generateError, setGenerateError] = useState<unknown>(null);
  const keyRef = useRef<HTMLTextAreaElement>(null);

  const generate = async () => {
    setBusy(true);
    setGenerateError(null);
    try {
      const key = await api.post<GeneratedKey>(paths.wizards.generateSshKey(), undefined, { comment: comment.trim() || undefined });
      onChange({ ...value, method: "generated_key", key_id: key.key_id, public_key: key.public_key });
    } catch (err) {
      setGenerateError(err);
    } finally {
      setBusy(false);
    }
  };

  const copy = async () => {
    if (!value.public_key) return;
    try {
      await navigator.clipboard.writeText(value.public_key);
      toastSuccess("Public key copied");
    } catch {
      // No clipboard (plain HTTP): select the text for a manual copy.
      keyRef.current?.select();
    }
  };

  const user = connection.username.trim() || "the SSH user";
  const host = connection.hostname.trim() || "the host";
  return (
    <div className="wizard-generated">
      <ErrorBanner error={generalError(generateError, ["comment"])} />
      <div className="wizard-row">
        <Field label="Key comment" error={fieldError(generateError, "comment")} hint="Ends the public key line; no spaces.">
          <input name="comment" value={comment} onChange={(event) => setComment(event.target.value)} disabled={disabled || busy} maxLength={128} />
        </Field>
        <div className="wizard-row-action">
          <button type="button" onClick={() => void generate()} disabled={disabled || busy}>
            Generate key
          </button>
          {busy && (
            <span className="small muted" role="status">
              Generating…
            </span>
          )}
        </div>
      </div>
      {fieldError(error, "key_id") && <p className="field-message">{fieldError(error, "key_id")}</p>}
      {value.public_key ? (
        <>
          <p>
            Add this public key to <code>~/.ssh/authorized_keys</code> of <strong>{user}</strong> on <strong>{host}</strong>, then go
            on to test the connection. Generating another key replaces this one.
          </p>
          <div className="wizard-pubkey">
            <textarea
              ref={keyRef}
              readOnly
              rows={3}
              value={value.public_key}
              aria-label="Public key"
              data-testid="public-key"
              onFocus={(event) => event.target.select()}
            />
            <button type="button" onClick={() => void copy()}>
              Copy
            </button>
          </div>
          <p className="small muted">
            On the host, for example: <code>echo '{value.public_key}' &gt;&gt; ~/.ssh/authorized_keys</code>
          </p>
        </>
      ) : (
        <p className="muted">dcp generates an ED25519 key pair; the private key stays sealed on the server.</p>
      )}
    </div>
  );
}

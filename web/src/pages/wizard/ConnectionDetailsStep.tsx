// Step 1: the host's name in dcp and where it is reached over SSH. Separate inputs for the
// host, port and user make `host_url` (`ssh://user@host:port`).
import type { ChangeEvent } from "react";
import { Field, fieldError } from "../../components/Field";
import { buildHostUrl, type ConnectionForm, connectionMissing, validateConnection } from "./connectionForm";

export function ConnectionDetailsStep({
  value,
  onChange,
  error,
  disabled = false,
}: {
  value: ConnectionForm;
  onChange: (value: ConnectionForm) => void;
  /** The last API error (its message is shown on the field it names). */
  error?: unknown;
  disabled?: boolean;
}) {
  const problems = validateConnection(value);
  const set = (field: keyof ConnectionForm) => (event: ChangeEvent<HTMLInputElement>) =>
    onChange({ ...value, [field]: event.target.value });
  // A filled-in field's own problem, else what the server said of it. (Empty fields are
  // listed under the form: a message appearing on blur would move the buttons under the
  // pointer.)
  const message = (field: keyof ConnectionForm, serverField: string = field): string | null =>
    (value[field].trim() !== "" && problems[field]) || fieldError(error, serverField);
  const complete = Object.keys(problems).length === 0;

  return (
    <div className="wizard-step" data-testid="step-connection">
      <p className="muted">Name the host, and tell dcp where its SSH server listens and which user to log in as.</p>
      <Field label="Name" error={message("connection_name")} hint="How the host is shown in dcp (e.g. build-server).">
        <input
          name="connection_name"
          value={value.connection_name}
          onChange={set("connection_name")}
          disabled={disabled}
          autoComplete="off"
          autoFocus
          maxLength={64}
          required
        />
      </Field>
      <div className="wizard-row">
        <Field label="Host" error={message("hostname", "host_url")} hint="Host name or IP address.">
          <input
            name="hostname"
            value={value.hostname}
            onChange={set("hostname")}
            disabled={disabled}
            autoComplete="off"
            placeholder="server.example.com"
            required
          />
        </Field>
        <Field label="Port" error={message("port")}>
          <input
            name="port"
            type="number"
            min={1}
            max={65535}
            value={value.port}
            onChange={set("port")}
            disabled={disabled}
            className="wizard-port"
            required
          />
        </Field>
      </div>
      <Field label="User" error={message("username")} hint="The SSH user; it needs access to the Docker socket.">
        <input
          name="username"
          value={value.username}
          onChange={set("username")}
          disabled={disabled}
          autoComplete="off"
          placeholder="deploy"
          required
        />
      </Field>
      {connectionMissing(value).length > 0 && (
        <p className="small muted" data-testid="connection-missing">
          Still needed: {connectionMissing(value).join(", ")}.
        </p>
      )}
      <p className="small muted">
        Connects to{" "}
        <code data-testid="host-url">{complete ? buildHostUrl(value) : "ssh://user@host:port"}</code>
      </p>
    </div>
  );
}

// Step 5: what will be registered, and optional tags; Finish completes the wizard.
import type { WizardState } from "../../api/types";
import { Field, fieldError } from "../../components/Field";
import { parseTags, stepData, stepTest, tagsProblem, text } from "./wizardData";

const METHOD_NAMES: Record<string, string> = {
  generated_key: "Generated key",
  imported_key: "Imported key",
  password: "Password",
};

export function ConfirmationStep({
  wizard,
  tags,
  onTagsChange,
  error,
  disabled = false,
}: {
  wizard: WizardState;
  tags: string;
  onTagsChange: (tags: string) => void;
  error?: unknown;
  disabled?: boolean;
}) {
  const connection = stepData(wizard, "connection");
  const auth = stepData(wizard, "authentication");
  const ssh = stepTest(wizard, "ssh_test")?.details ?? {};
  const docker = stepTest(wizard, "docker_test")?.details ?? {};
  const method = text(auth?.method);
  const parsed = parseTags(tags);
  const problem = tagsProblem(parsed);

  return (
    <div className="wizard-step" data-testid="step-confirmation">
      <p className="muted">dcp registers this host and checks it; it is ready once the check passes.</p>
      <dl className="kv panel" data-testid="wizard-summary">
        <dt>Name</dt>
        <dd>{text(connection?.connection_name) ?? "—"}</dd>
        <dt>Connection</dt>
        <dd className="mono">{text(connection?.host_url) ?? "—"}</dd>
        <dt>Authentication</dt>
        <dd>{method ? (METHOD_NAMES[method] ?? method) : "—"}</dd>
        <dt>Host key</dt>
        <dd className="mono">
          {text(ssh.algorithm) ?? ""} {text(ssh.fingerprint) ?? "—"}
        </dd>
        <dt>Docker</dt>
        <dd>
          {text(docker.version) ? `Engine ${text(docker.version)} (API ${text(docker.api_version) ?? "?"})` : "—"}
          {text(docker.os) ? `, ${text(docker.os)}` : ""}
        </dd>
      </dl>
      <Field
        label="Tags (optional)"
        error={(tags.trim() && problem) || fieldError(error, "tags")}
        hint="Comma-separated, e.g. production, eu-west. Letters, digits, '-', '_', '.', ':'."
      >
        <input name="tags" value={tags} onChange={(event) => onTagsChange(event.target.value)} disabled={disabled} autoComplete="off" />
      </Field>
      {parsed.length > 0 && !problem && (
        <div className="wizard-tags">
          {parsed.map((tag) => (
            <span key={tag} className="badge badge-info">
              {tag}
            </span>
          ))}
        </div>
      )}
    </div>
  );
}

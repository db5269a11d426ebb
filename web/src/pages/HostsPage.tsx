// The Docker hosts dcp manages: the local engine and remote hosts over SSH, live (host
// events, and a poll for what has no events, such as liveness). Admins test, disable,
// rename, retag and remove hosts, add hosts with the SSH host setup wizard, and resume the
// setups they left open (the open one is `?wizard=<id>` in the URL, so a reload reopens it).
import { useCallback, useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { HostView, WizardState } from "../api/types";
import { Empty } from "../components/Empty";
import { ErrorBanner } from "../components/ErrorBanner";
import { Field, fieldError } from "../components/Field";
import { FormDialog } from "../components/FormDialog";
import { PageHeader } from "../components/PageHeader";
import { Spinner } from "../components/Spinner";
import { StatusBadge } from "../components/StatusBadge";
import { useSubmit } from "../hooks/useSubmit";
import { useAction } from "../hooks/useAction";
import { useQuery } from "../hooks/useQuery";
import { startWizard, useWizardInUrl } from "../hooks/useWizard";
import { formatAgo, formatTime } from "../format";
import { can, useRole } from "../stores/auth";
import { useHostList } from "../stores/hosts";
import { toastError, toastSuccess } from "../stores/toasts";
import { TestFailure } from "./wizard/TestFailure";
import { SSH_HOST_SETUP } from "./wizard/sshHostSetup";
import { WizardModal } from "./wizard/WizardModal";
import { parseTags, stepData, stepTitle, tagsProblem, text, type CheckResult, type CompletionView } from "./wizard/wizardData";
import "./wizard/wizard.css";

const METHOD_NAMES: Record<string, string> = {
  generated_key: "generated key",
  imported_key: "imported key",
  password: "password",
};

export function HostsPage() {
  const role = useRole();
  const admin = can(role, "admin");
  const { openId: openWizard, show: showWizard } = useWizardInUrl();
  const [check, setCheck] = useState<{ name: string; result: CheckResult } | null>(null);
  const [editing, setEditing] = useState<HostView | null>(null);
  const [removing, setRemoving] = useState<HostView | null>(null);

  const hosts = useHostList();
  const wizards = useQuery(
    (signal) => (admin ? api.get<WizardState[]>(paths.wizards.list(), undefined, signal) : Promise.resolve([] as WizardState[])),
    [admin],
    { liveTypes: ["wizard"] },
  );
  const reloadHosts = hosts.reload;
  const reloadWizards = wizards.reload;

  const start = useAction(() => startWizard(SSH_HOST_SETUP, { opened_from: "hosts_page" }), { what: "Start the host setup" });
  const addHost = async () => {
    const wizard = await start.run();
    if (wizard?.id) {
      showWizard(wizard.id);
      reloadWizards();
    }
  };

  const closeWizard = useCallback(() => {
    showWizard(null);
    reloadWizards();
  }, [showWizard, reloadWizards]);
  const cancelled = useCallback(() => {
    toastSuccess("Host setup cancelled");
    closeWizard();
  }, [closeWizard]);
  const completed = useCallback(
    (completion: CompletionView) => {
      const name = text(stepData(completion.wizard, "connection")?.connection_name) ?? completion.result.host_id;
      const check = completion.result.check;
      if (check.reachable) toastSuccess(`Host "${name}" added and active`);
      else toastError(check.error ?? "the first check failed", `Host "${name}" added, but it is not reachable yet`);
      closeWizard();
      reloadHosts();
    },
    [closeWizard, reloadHosts],
  );

  // Stable, so that the dialogs keep their focus when the page re-renders (polling).
  const closeEdit = useCallback(() => setEditing(null), []);
  const closeRemove = useCallback(() => setRemoving(null), []);

  const list = hosts.data ?? [];
  const openWizards = wizards.data ?? [];

  return (
    <div className="hosts-page">
      <PageHeader title="Hosts">
        {admin && (
          <button type="button" className="primary" onClick={() => void addHost()} disabled={start.busy}>
            Add host
          </button>
        )}
      </PageHeader>

      <ErrorBanner error={hosts.error} onRetry={reloadHosts} />

      {check && (
        <div className="panel" data-testid="host-check">
          <div className="hosts-check">
            <h3 style={{ margin: 0 }}>
              Test of {check.name}: {check.result.reachable ? "reachable" : "not reachable"}
            </h3>
            <button type="button" className="link" onClick={() => setCheck(null)}>
              Dismiss
            </button>
          </div>
          <CheckDetails result={check.result} name={check.name} />
        </div>
      )}

      {admin && openWizards.length > 0 && (
        <div className="panel hosts-wizards" data-testid="open-wizards">
          <h3 style={{ marginTop: 0 }}>Host setups in progress</h3>
          <table>
            <thead>
              <tr>
                <th>Host</th>
                <th>Step</th>
                <th>Last change</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {openWizards.map((wizard) => {
                const connection = stepData(wizard, "connection");
                const name = text(connection?.connection_name);
                return (
                  <tr key={wizard.id ?? ""} data-testid="wizard-row">
                    <td>
                      {name ?? <span className="muted">(not named yet)</span>}
                      {text(connection?.host_url) && <div className="small muted mono">{text(connection?.host_url)}</div>}
                    </td>
                    <td>
                      Step {wizard.current_step + 1} of {wizard.total_steps}: {stepTitle(wizard.step_name)}
                    </td>
                    <td title={formatTime(wizard.updated_at)}>{formatAgo(wizard.updated_at)}</td>
                    <td>
                      <button type="button" onClick={() => wizard.id && showWizard(wizard.id)} disabled={!wizard.id || openWizard === wizard.id}>
                        Resume
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <ErrorBanner error={wizards.error} onRetry={reloadWizards} />

      {hosts.loading && !hosts.data ? (
        <Spinner />
      ) : list.length === 0 ? (
        !hosts.error && <Empty>No hosts.</Empty>
      ) : (
        <table className="hosts-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Status</th>
              <th>Engine</th>
              <th>Connection</th>
              <th>Tags</th>
              <th>Liveness</th>
              <th>SSH handshakes</th>
              {admin && <th>Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.map((host) => (
              <HostRow
                key={host.id}
                host={host}
                admin={admin}
                onChanged={reloadHosts}
                onChecked={(result) => setCheck({ name: host.name, result })}
                onEdit={() => setEditing(host)}
                onRemove={() => setRemoving(host)}
              />
            ))}
          </tbody>
        </table>
      )}

      {editing && (
        <EditHostModal
          host={editing}
          onClose={closeEdit}
          onSaved={() => {
            setEditing(null);
            reloadHosts();
          }}
        />
      )}
      {removing && (
        <RemoveHostModal
          host={removing}
          onClose={closeRemove}
          onRemoved={() => {
            setRemoving(null);
            setCheck((c) => (c?.name === removing.name ? null : c));
            reloadHosts();
          }}
        />
      )}
      {admin && openWizard && (
        <WizardModal key={openWizard} wizardId={openWizard} onClose={closeWizard} onCancelled={cancelled} onCompleted={completed} />
      )}
    </div>
  );
}

function HostRow({
  host,
  admin,
  onChanged,
  onChecked,
  onEdit,
  onRemove,
}: {
  host: HostView;
  admin: boolean;
  onChanged: () => void;
  onChecked: (result: CheckResult) => void;
  onEdit: () => void;
  onRemove: () => void;
}) {
  const ssh = host.ssh ?? null;
  const local = host.kind === "local";
  const disabled = host.status === "disabled";
  const test = useAction(() => api.post<CheckResult>(paths.hosts.test(host.id)), { what: `Test ${host.name}` });
  const toggle = useAction(() => api.patch<HostView>(paths.hosts.update(host.id), { enabled: disabled }), {
    what: `${disabled ? "Enable" : "Disable"} ${host.name}`,
    success: `Host ${host.name} ${disabled ? "enabled" : "disabled"}`,
  });
  const busy = test.busy || toggle.busy;
  const lastError = host.liveness?.last_error ?? ssh?.last_error ?? null;

  return (
    <tr data-testid="host-row">
      <td>
        <strong>{host.name}</strong>
        <div className="small muted">{local ? "local engine" : "SSH"}</div>
      </td>
      <td>
        <StatusBadge status={host.status} />
        {lastError && host.status !== "active" && <div className="small muted" style={{ maxWidth: 260 }}>{lastError}</div>}
        {ssh?.key_mismatch && <div className="small field-message">A different host key was presented (refused).</div>}
      </td>
      <td>
        {host.engine_version ?? "—"}
        {ssh?.api_version && <div className="small muted">API {ssh.api_version}</div>}
      </td>
      <td>
        {ssh ? (
          <>
            <div className="mono">
              {ssh.user}@{ssh.address}:{ssh.port}
            </div>
            <div className="small muted">{METHOD_NAMES[ssh.auth_method] ?? ssh.auth_method}</div>
            <div className="mono muted hosts-fingerprint" title={ssh.host_key}>
              {ssh.fingerprint}
            </div>
          </>
        ) : (
          <span className="muted">Docker socket</span>
        )}
      </td>
      <td>
        {ssh && ssh.tags.length > 0 ? (
          <div className="hosts-tags">
            {ssh.tags.map((tag) => (
              <span key={tag} className="badge badge-info">
                {tag}
              </span>
            ))}
          </div>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td>
        {host.liveness ? (
          <>
            <div title={formatTime(host.liveness.last_seen)}>Seen {formatAgo(host.liveness.last_seen)}</div>
            <div className="small muted" title={formatTime(host.liveness.last_checked)}>
              Checked {formatAgo(host.liveness.last_checked)}
              {typeof host.liveness.latency_ms === "number" ? `, ${Math.round(host.liveness.latency_ms)} ms` : ""}
            </div>
          </>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td>{host.ssh_handshakes ?? "—"}</td>
      {admin && (
        <td>
          <div className="hosts-actions">
            <button
              type="button"
              onClick={() =>
                void test.run().then((result) => {
                  if (result) onChecked(result);
                  onChanged();
                })
              }
              disabled={busy}
            >
              Test
            </button>
            {!local && (
              <>
                <button type="button" onClick={() => void toggle.run().then((r) => r && onChanged())} disabled={busy}>
                  {disabled ? "Enable" : "Disable"}
                </button>
                <button type="button" onClick={onEdit} disabled={busy}>
                  Edit
                </button>
                <button type="button" className="danger" onClick={onRemove} disabled={busy}>
                  Remove
                </button>
              </>
            )}
          </div>
        </td>
      )}
    </tr>
  );
}

function CheckDetails({ result, name }: { result: CheckResult; name: string }) {
  if (!result.reachable) {
    return <TestFailure details={{ error: result.error, error_kind: result.error_kind }} what={`The test of ${name}`} />;
  }
  return (
    <dl className="kv">
      <dt>Engine version</dt>
      <dd>{result.engine_version ?? "—"}</dd>
      <dt>API version</dt>
      <dd>{result.api_version ?? "—"}</dd>
      {result.os && (
        <>
          <dt>Operating system</dt>
          <dd>{result.os}</dd>
        </>
      )}
      <dt>Containers</dt>
      <dd>{result.containers ?? "—"}</dd>
      <dt>Images</dt>
      <dd>{result.images ?? "—"}</dd>
      <dt>Latency</dt>
      <dd>{Math.round(result.latency_ms)} ms</dd>
      <dt>SSH handshakes</dt>
      <dd>{result.ssh_handshakes}</dd>
    </dl>
  );
}

function EditHostModal({ host, onClose, onSaved }: { host: HostView; onClose: () => void; onSaved: () => void }) {
  const [name, setName] = useState(host.name);
  const [tags, setTags] = useState((host.ssh?.tags ?? []).join(", "));
  const parsed = parseTags(tags);
  const tagProblem = tagsProblem(parsed);
  const { run, busy, error } = useSubmit(async (body: { name?: string; tags?: string[] }) => {
    await api.patch<HostView>(paths.hosts.update(host.id), body);
    toastSuccess(`Host ${body.name ?? host.name} saved`);
    onSaved();
  });

  const save = async () => {
    if (tagProblem || !name.trim()) return;
    const body: { name?: string; tags?: string[] } = {};
    if (name !== host.name) body.name = name;
    if (parsed.join(",") !== (host.ssh?.tags ?? []).join(",")) body.tags = parsed;
    if (!body.name && !body.tags) {
      onClose();
      return;
    }
    await run(body);
  };

  const known = fieldError(error, "name") || fieldError(error, "tags");
  return (
    <FormDialog
      title={`Edit ${host.name}`}
      onClose={onClose}
      onSubmit={save}
      formId="edit-host-form"
      submitLabel="Save"
      busy={busy}
      disabled={!!tagProblem || !name.trim()}
      cancelDisabled={busy}
    >
      {!known && <ErrorBanner error={error} />}
      <Field label="Name" error={fieldError(error, "name")}>
        <input name="name" value={name} onChange={(event) => setName(event.target.value)} maxLength={64} required />
      </Field>
      <Field label="Tags" error={(tags.trim() && tagProblem) || fieldError(error, "tags")} hint="Comma-separated.">
        <input name="tags" value={tags} onChange={(event) => setTags(event.target.value)} />
      </Field>
    </FormDialog>
  );
}

function RemoveHostModal({ host, onClose, onRemoved }: { host: HostView; onClose: () => void; onRemoved: () => void }) {
  const { run: remove, busy, error } = useSubmit(async () => {
    await api.delete<void>(paths.hosts.remove(host.id));
    toastSuccess(`Host ${host.name} removed`);
    onRemoved();
  });
  return (
    <FormDialog
      title={`Remove ${host.name}?`}
      onClose={onClose}
      onSubmit={remove}
      submitLabel="Remove"
      busy={busy}
      danger
      cancelDisabled={busy}
    >
      <ErrorBanner error={error} />
      <p>
        dcp stops using <strong>{host.name}</strong> and forgets its credentials. Its containers are left running.
      </p>
    </FormDialog>
  );
}

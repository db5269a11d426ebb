// A row of the hosts table: the host's state, engine, connection, tags and liveness, and
// (for admins) its actions: test, enable or disable, edit, remove.
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { HostView } from "../../api/types";
import { StatusBadge } from "../../components/StatusBadge";
import { useAction } from "../../hooks/useAction";
import { formatAgo, formatTime } from "../../format";
import type { CheckResult } from "../wizard/wizardData";
import "./hosts.css";

const METHOD_NAMES: Record<string, string> = {
  generated_key: "generated key",
  imported_key: "imported key",
  password: "password",
};

export function HostRow({
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

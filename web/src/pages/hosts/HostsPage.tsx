// The Docker hosts dcp manages: the local engine and remote hosts over SSH, live (host
// events, and a poll for what has no events, such as liveness). Admins test, disable,
// rename, retag and remove hosts, add hosts with the SSH host setup wizard, and resume the
// setups they left open (the open one is `?wizard=<id>` in the URL, so a reload reopens it).
import { useCallback, useState } from "react";
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { HostView, WizardState } from "../../api/types";
import { Empty } from "../../components/Empty";
import { ErrorBanner } from "../../components/ErrorBanner";
import { PageHeader } from "../../components/PageHeader";
import { Spinner } from "../../components/Spinner";
import { useAction } from "../../hooks/useAction";
import { useQuery } from "../../hooks/useQuery";
import { startWizard, useWizardInUrl } from "../../hooks/useWizard";
import { formatAgo, formatTime } from "../../format";
import { can, useRole } from "../../stores/auth";
import { useHostList } from "../../stores/hosts";
import { toastError, toastSuccess } from "../../stores/toasts";
import { SSH_HOST_SETUP } from "../wizard/sshHostSetup";
import { WizardModal } from "../wizard/WizardModal";
import { type CheckResult, type CompletionView, stepData, stepTitle, text } from "../wizard/wizardData";
import { CheckDetails } from "./CheckDetails";
import { EditHostModal } from "./EditHostModal";
import { HostRow } from "./HostRow";
import { RemoveHostModal } from "./RemoveHostModal";
import "./hosts.css";

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

// Volumes on every host: create one (name, driver, labels, host) and remove one.
import { useCallback, useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { VolumeList } from "../api/types";
import type { components } from "../api/schema";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorBanner } from "../components/ErrorBanner";
import { Field, fieldError } from "../components/Field";
import { FormDialog } from "../components/FormDialog";
import { hostOptions, HostSelect } from "../components/HostSelect";
import { Labels } from "../components/Labels";
import { PrivilegedFields } from "../components/PrivilegedFields";
import { ResourceListPage } from "../components/ResourceListPage";
import { useSubmit } from "../hooks/useSubmit";
import { type CreateDialogProps, nameError, optional, parsePairs } from "./resources/forms";
import { formatTime } from "../format";
import { useQuery } from "../hooks/useQuery";
import { can, useRole } from "../stores/auth";
import { toastSuccess } from "../stores/toasts";
import { useHosts } from "../stores/hosts";
import "./resources/resources.css";

type VolumeItem = VolumeList["items"][number];
type CreateVolumeBody = components["schemas"]["CreateVolumeRequest"];

export function VolumesPage() {
  const role = useRole();
  const mayMutate = can(role, "mutate");
  const [host, setHost] = useState("");
  const [filter, setFilter] = useState("");
  const query = useQuery((signal) => api.get<VolumeList>(paths.volumes.list(), { host: host || undefined }, signal), [host], {
    liveTypes: ["volume"],
  });
  const hosts = useHosts();
  const options = hostOptions(hosts, query.data?.hosts);
  const [creating, setCreating] = useState(false);
  const [removing, setRemoving] = useState<VolumeItem | null>(null);
  const reload = query.reload;
  const needle = filter.trim().toLowerCase();
  const items = (query.data?.items ?? []).filter((v) => !needle || v.name.toLowerCase().includes(needle));

  return (
    <ResourceListPage
      title="Volumes"
      create={mayMutate ? { label: "Create volume", onClick: () => setCreating(true) } : undefined}
      query={query}
      hosts={query.data?.hosts}
      search={{ label: "Filter by name", placeholder: "Filter by name…", value: filter, onChange: setFilter }}
      hostFilter={{ value: host, onChange: setHost, options }}
      count={items.length}
      empty="No volumes."
      after={
        <>
          {creating && (
            <CreateVolumeDialog
              admin={can(role, "admin")}
              hostOptions={options}
              defaultHost={host || options[0]?.value || "local"}
              onClose={() => setCreating(false)}
              onCreated={reload}
            />
          )}
          {removing && <RemoveVolumeDialog volume={removing} onClose={() => setRemoving(null)} onRemoved={reload} />}
        </>
      }
    >
      <table className="res-table" aria-label="Volumes">
        <thead>
          <tr>
            <th>Name</th>
            <th>Driver</th>
            <th>Mountpoint</th>
            <th>Host</th>
            <th>Created</th>
            <th>Labels</th>
            {mayMutate && <th />}
          </tr>
        </thead>
        <tbody>
          {items.map((volume) => (
            <tr key={`${volume.host}/${volume.name}`} data-testid="volume-row">
              <td className="mono">{volume.name}</td>
              <td>{volume.driver}</td>
              <td className="mono small" style={{ overflowWrap: "anywhere" }}>
                {volume.mountpoint}
              </td>
              <td>{volume.host}</td>
              <td className="nowrap">{formatTime(volume.created_at)}</td>
              <td>
                <Labels labels={volume.labels} />
              </td>
              {mayMutate && (
                <td>
                  <div className="res-actions">
                    <button type="button" className="danger" aria-label={`Remove volume ${volume.name}`} onClick={() => setRemoving(volume)}>
                      Remove
                    </button>
                  </div>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </ResourceListPage>
  );
}

function CreateVolumeDialog({
  admin,
  hostOptions: options,
  defaultHost,
  onClose,
  onCreated,
}: CreateDialogProps) {
  const [name, setName] = useState("");
  const [driver, setDriver] = useState("local");
  const [labels, setLabels] = useState("");
  const [driverOpts, setDriverOpts] = useState("");
  const [host, setHost] = useState(defaultHost);
  const [privileged, setPrivileged] = useState(false);
  const [reason, setReason] = useState("");
  const [local, setLocal] = useState<Record<string, string>>({});
  const create = useCallback(
    (body: CreateVolumeBody, onHost: string) => api.post(paths.volumes.create(), body, { host: onHost }),
    [],
  );
  const { run, busy, error } = useSubmit(create);
  const submit = async () => {
    const errors: Record<string, string> = {};
    const badName = nameError(name);
    if (badName) errors.name = badName;
    const parsedLabels = parsePairs(labels, "label");
    if (parsedLabels.error) errors.labels = parsedLabels.error;
    const parsedOpts = parsePairs(driverOpts, "driver option");
    if (parsedOpts.error) errors.driver_opts = parsedOpts.error;
    if (privileged && !reason.trim()) errors.reason = "say why (recorded with the request)";
    setLocal(errors);
    if (Object.keys(errors).length > 0) return;
    const body: CreateVolumeBody = { name: name.trim(), driver: optional(driver) };
    if (Object.keys(parsedLabels.value).length > 0) body.labels = parsedLabels.value;
    if (Object.keys(parsedOpts.value).length > 0) body.driver_opts = parsedOpts.value;
    if (privileged) {
      body.allow_privileged = true;
      body.reason = reason.trim();
    }
    const result = await run(body, host);
    if (result.ok) {
      toastSuccess(`Created volume ${body.name}`);
      onCreated();
      onClose();
    }
  };
  const named = ["name", "driver", "labels", "driver_opts", "reason", "allow_privileged", "host"];
  const generalError = error && !named.some((f) => fieldError(error, f)) ? error : null;
  return (
    <FormDialog
      title="Create volume"
      onClose={onClose}
      onSubmit={submit}
      formId="create-volume-form"
      submitLabel="Create"
      busyLabel="Creating…"
      busy={busy}
    >
      <ErrorBanner error={generalError} />
      <Field label="Name" error={local.name ?? fieldError(error, "name")}>
        <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" />
      </Field>
      <Field label="Driver" error={fieldError(error, "driver")} hint="local, or a volume plugin (admins, privileged)">
        <input value={driver} onChange={(e) => setDriver(e.target.value)} autoComplete="off" />
      </Field>
      <Field label="Labels" error={local.labels ?? fieldError(error, "labels")} hint="one key=value per line">
        <textarea rows={3} value={labels} onChange={(e) => setLabels(e.target.value)} />
      </Field>
      <Field label="Driver options" error={local.driver_opts ?? fieldError(error, "driver_opts")} hint="one key=value per line, e.g. type=tmpfs">
        <textarea rows={2} value={driverOpts} onChange={(e) => setDriverOpts(e.target.value)} />
      </Field>
      <Field label="Host" error={fieldError(error, "host")}>
        <HostSelect label="Host" value={host} onChange={setHost} options={options} />
      </Field>
      {admin && (
        <PrivilegedFields
          what="host paths, devices, plugins"
          privileged={privileged}
          onPrivileged={setPrivileged}
          reason={reason}
          onReason={setReason}
          reasonError={local.reason ?? fieldError(error, "reason")}
        />
      )}
    </FormDialog>
  );
}

function RemoveVolumeDialog({ volume, onClose, onRemoved }: { volume: VolumeItem; onClose: () => void; onRemoved: () => void }) {
  const [force, setForce] = useState(false);
  return (
    <ConfirmDialog
      title={`Remove volume ${volume.name}`}
      confirmLabel="Remove"
      onClose={onClose}
      onConfirm={async () => {
        await api.delete(paths.volumes.remove(volume.name), { host: volume.host, force: force || undefined });
        toastSuccess(`Removed volume ${volume.name}`);
        onRemoved();
      }}
    >
      <p>
        Remove volume <strong className="mono">{volume.name}</strong> from host <strong>{volume.host}</strong>? Its data is lost.
      </p>
      <label className="check">
        <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />
        Force
      </label>
    </ConfirmDialog>
  );
}

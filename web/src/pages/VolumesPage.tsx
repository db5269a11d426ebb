// Volumes on every host: create one (name, driver, labels, host) and remove one.
import { useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { VolumeList } from "../api/types";
import type { components } from "../api/schema";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { OptionalReason } from "../components/ReasonDialog";
import { Field } from "../components/Field";
import { hostOptions } from "../components/HostSelect";
import { Labels } from "../components/Labels";
import { ResourceListPage } from "../components/ResourceListPage";
import { CreateResourceDialog, useCreateResourceForm } from "./resources/CreateResourceDialog";
import { type CreateDialogProps, optional, parsePairs } from "./resources/forms";
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
          {removing && <RemoveVolumeDialog volume={removing} admin={can(role, "admin")} onClose={() => setRemoving(null)} onRemoved={reload} />}
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

function CreateVolumeDialog({ admin, hostOptions, defaultHost, onClose, onCreated }: CreateDialogProps) {
  const [driver, setDriver] = useState("local");
  const [driverOpts, setDriverOpts] = useState("");
  const { form, submit } = useCreateResourceForm<CreateVolumeBody>({
    what: "volume",
    path: paths.volumes.create(),
    defaultHost,
    onCreated,
    onClose,
  });
  const onSubmit = () => {
    const opts = parsePairs(driverOpts, "driver option");
    return submit(
      { driver_opts: opts.error },
      { driver: optional(driver), driver_opts: Object.keys(opts.value).length > 0 ? opts.value : undefined },
    );
  };
  return (
    <CreateResourceDialog
      form={form}
      title="Create volume"
      formId="create-volume-form"
      admin={admin}
      hostOptions={hostOptions}
      onClose={onClose}
      onSubmit={onSubmit}
      privilegedWhat="host paths, devices, plugins"
      fields={["driver", "driver_opts"]}
      afterLabels={
        <Field label="Driver options" error={form.message("driver_opts")} hint="one key=value per line, e.g. type=tmpfs">
          <textarea rows={2} value={driverOpts} onChange={(e) => setDriverOpts(e.target.value)} />
        </Field>
      }
    >
      <Field label="Driver" error={form.message("driver")} hint="local, or a volume plugin (admins, privileged)">
        <input value={driver} onChange={(e) => setDriver(e.target.value)} autoComplete="off" />
      </Field>
    </CreateResourceDialog>
  );
}

function RemoveVolumeDialog({
  volume,
  admin,
  onClose,
  onRemoved,
}: {
  volume: VolumeItem;
  admin: boolean;
  onClose: () => void;
  onRemoved: () => void;
}) {
  const [force, setForce] = useState(false);
  const [reason, setReason] = useState("");
  return (
    <ConfirmDialog
      title={`Remove volume ${volume.name}`}
      confirmLabel="Remove"
      onClose={onClose}
      onConfirm={async () => {
        await api.delete(paths.volumes.remove(volume.name), { host: volume.host, force: force || undefined, reason: reason.trim() || undefined });
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
      {admin && <OptionalReason value={reason} onChange={setReason} />}
    </ConfirmDialog>
  );
}

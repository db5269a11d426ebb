// Networks on every host: create one, remove one, connect or disconnect a container.
import { useCallback, useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { NetworkList } from "../api/types";
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
import { formatTime, shortId } from "../format";
import { useQuery } from "../hooks/useQuery";
import { can, useRole } from "../stores/auth";
import { toastSuccess } from "../stores/toasts";
import { useHosts } from "../stores/hosts";
import "./resources/resources.css";

type NetworkItem = NetworkList["items"][number];
type CreateNetworkBody = components["schemas"]["CreateNetworkRequest"];

/** Docker's own networks, which cannot be removed. */
const BUILT_IN = new Set(["bridge", "host", "none"]);
const DRIVERS = ["bridge", "overlay", "macvlan", "ipvlan"];

export function NetworksPage() {
  const role = useRole();
  const mayMutate = can(role, "mutate");
  const [host, setHost] = useState("");
  const [filter, setFilter] = useState("");
  const query = useQuery((signal) => api.get<NetworkList>(paths.networks.list(), { host: host || undefined }, signal), [host], {
    liveTypes: ["network"],
  });
  const hosts = useHosts();
  const options = hostOptions(hosts, query.data?.hosts);
  const [creating, setCreating] = useState(false);
  const [removing, setRemoving] = useState<NetworkItem | null>(null);
  const [attaching, setAttaching] = useState<{ network: NetworkItem; mode: "connect" | "disconnect" } | null>(null);
  const reload = query.reload;
  const needle = filter.trim().toLowerCase();
  const items = (query.data?.items ?? []).filter((n) => !needle || n.name.toLowerCase().includes(needle) || n.id.startsWith(needle));

  return (
    <ResourceListPage
      title="Networks"
      create={mayMutate ? { label: "Create network", onClick: () => setCreating(true) } : undefined}
      query={query}
      hosts={query.data?.hosts}
      search={{ label: "Filter by name", placeholder: "Filter by name or id…", value: filter, onChange: setFilter }}
      hostFilter={{ value: host, onChange: setHost, options }}
      count={items.length}
      empty="No networks."
      after={
        <>
          {creating && (
            <CreateNetworkDialog
              admin={can(role, "admin")}
              hostOptions={options}
              defaultHost={host || options[0]?.value || "local"}
              onClose={() => setCreating(false)}
              onCreated={reload}
            />
          )}
          {removing && (
            <ConfirmDialog
              title={`Remove network ${removing.name}`}
              confirmLabel="Remove"
              onClose={() => setRemoving(null)}
              onConfirm={async () => {
                await api.delete(paths.networks.remove(removing.id), { host: removing.host });
                toastSuccess(`Removed network ${removing.name}`);
                reload();
              }}
            >
              <p>
                Remove network <strong className="mono">{removing.name}</strong> from host <strong>{removing.host}</strong>?
              </p>
            </ConfirmDialog>
          )}
          {attaching && <AttachDialog {...attaching} onClose={() => setAttaching(null)} onDone={reload} />}
        </>
      }
    >
      <table className="res-table" aria-label="Networks">
        <thead>
          <tr>
            <th>Name</th>
            <th>ID</th>
            <th>Driver</th>
            <th>Scope</th>
            <th>Options</th>
            <th>Host</th>
            <th>Created</th>
            <th>Labels</th>
            {mayMutate && <th />}
          </tr>
        </thead>
        <tbody>
          {items.map((network) => (
            <tr key={`${network.host}/${network.id}`} data-testid="network-row">
              <td className="mono">{network.name}</td>
              <td className="mono" title={network.id}>
                {shortId(network.id)}
              </td>
              <td>{network.driver ?? "—"}</td>
              <td>{network.scope ?? "—"}</td>
              <td className="small">
                {[network.internal && "internal", network.attachable && "attachable"].filter(Boolean).join(", ") || "—"}
              </td>
              <td>{network.host}</td>
              <td className="nowrap">{formatTime(network.created_at)}</td>
              <td>
                <Labels labels={network.labels} />
              </td>
              {mayMutate && (
                <td>
                  <div className="res-actions">
                    {network.name !== "none" && network.name !== "host" && (
                      <>
                        <button type="button" aria-label={`Connect a container to ${network.name}`} onClick={() => setAttaching({ network, mode: "connect" })}>
                          Connect
                        </button>
                        <button
                          type="button"
                          aria-label={`Disconnect a container from ${network.name}`}
                          onClick={() => setAttaching({ network, mode: "disconnect" })}
                        >
                          Disconnect
                        </button>
                      </>
                    )}
                    {!BUILT_IN.has(network.name) && (
                      <button type="button" className="danger" aria-label={`Remove network ${network.name}`} onClick={() => setRemoving(network)}>
                        Remove
                      </button>
                    )}
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

function CreateNetworkDialog({
  admin,
  hostOptions: options,
  defaultHost,
  onClose,
  onCreated,
}: CreateDialogProps) {
  const [name, setName] = useState("");
  const [driver, setDriver] = useState("bridge");
  const [subnet, setSubnet] = useState("");
  const [gateway, setGateway] = useState("");
  const [internal, setInternal] = useState(false);
  const [attachable, setAttachable] = useState(false);
  const [labels, setLabels] = useState("");
  const [host, setHost] = useState(defaultHost);
  const [privileged, setPrivileged] = useState(false);
  const [reason, setReason] = useState("");
  const [local, setLocal] = useState<Record<string, string>>({});
  const create = useCallback(
    (body: CreateNetworkBody, onHost: string) => api.post(paths.networks.create(), body, { host: onHost }),
    [],
  );
  const { run, busy, error } = useSubmit(create);
  const submit = async () => {
    const errors: Record<string, string> = {};
    const badName = nameError(name);
    if (badName) errors.name = badName;
    const parsed = parsePairs(labels, "label");
    if (parsed.error) errors.labels = parsed.error;
    if (subnet.trim() && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(subnet.trim())) errors.subnet = "a CIDR such as 172.30.0.0/24";
    if (gateway.trim() && !subnet.trim()) errors.gateway = "a gateway needs a subnet";
    if (privileged && !reason.trim()) errors.reason = "say why (recorded with the request)";
    setLocal(errors);
    if (Object.keys(errors).length > 0) return;
    const body: CreateNetworkBody = {
      name: name.trim(),
      driver,
      subnet: optional(subnet),
      gateway: optional(gateway),
      internal: internal || undefined,
      attachable: attachable || undefined,
    };
    if (Object.keys(parsed.value).length > 0) body.labels = parsed.value;
    if (privileged) {
      body.allow_privileged = true;
      body.reason = reason.trim();
    }
    const result = await run(body, host);
    if (result.ok) {
      toastSuccess(`Created network ${body.name}`);
      onCreated();
      onClose();
    }
  };
  const named = ["name", "driver", "subnet", "gateway", "labels", "reason", "allow_privileged", "internal", "attachable", "host"];
  const generalError = error && !named.some((f) => fieldError(error, f)) ? error : null;
  return (
    <FormDialog
      title="Create network"
      onClose={onClose}
      onSubmit={submit}
      formId="create-network-form"
      submitLabel="Create"
      busyLabel="Creating…"
      busy={busy}
    >
      <ErrorBanner error={generalError} />
      <Field label="Name" error={local.name ?? fieldError(error, "name")}>
        <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" />
      </Field>
      <Field label="Driver" error={fieldError(error, "driver")} hint="macvlan and ipvlan: admins, privileged">
        <select value={driver} onChange={(e) => setDriver(e.target.value)}>
          {DRIVERS.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </Field>
      <div className="form-grid">
        <Field label="Subnet" error={local.subnet ?? fieldError(error, "subnet")} hint="CIDR; empty: Docker picks one">
          <input value={subnet} onChange={(e) => setSubnet(e.target.value)} placeholder="172.30.0.0/24" autoComplete="off" />
        </Field>
        <Field label="Gateway" error={local.gateway ?? fieldError(error, "gateway")}>
          <input value={gateway} onChange={(e) => setGateway(e.target.value)} placeholder="172.30.0.1" autoComplete="off" />
        </Field>
      </div>
      <label className="check">
        <input type="checkbox" checked={internal} onChange={(e) => setInternal(e.target.checked)} />
        Internal (no route outside the network)
      </label>
      <label className="check">
        <input type="checkbox" checked={attachable} onChange={(e) => setAttachable(e.target.checked)} />
        Attachable
      </label>
      <Field label="Labels" error={local.labels ?? fieldError(error, "labels")} hint="one key=value per line">
        <textarea rows={3} value={labels} onChange={(e) => setLabels(e.target.value)} />
      </Field>
      <Field label="Host" error={fieldError(error, "host")}>
        <HostSelect label="Host" value={host} onChange={setHost} options={options} />
      </Field>
      {admin && (
        <PrivilegedFields
          what="subnet routes, macvlan, ipvlan"
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

function AttachDialog({
  network,
  mode,
  onClose,
  onDone,
}: {
  network: NetworkItem;
  mode: "connect" | "disconnect";
  onClose: () => void;
  onDone: () => void;
}) {
  const [container, setContainer] = useState("");
  const [aliases, setAliases] = useState("");
  const [force, setForce] = useState(false);
  const [local, setLocal] = useState<string | null>(null);
  const send = useCallback(
    (body: Record<string, unknown>) =>
      api.post(paths.networks.attach(network.id, mode), body, { host: network.host }),
    [network.id, network.host, mode],
  );
  const { run, busy, error } = useSubmit(send);
  const submit = async () => {
    if (!container.trim()) {
      setLocal("a container id or name is required");
      return;
    }
    setLocal(null);
    const body: Record<string, unknown> = { container: container.trim() };
    if (mode === "connect") {
      const list = aliases
        .split(/[\s,]+/)
        .map((a) => a.trim())
        .filter(Boolean);
      if (list.length > 0) body.aliases = list;
    } else if (force) body.force = true;
    const result = await run(body);
    if (result.ok) {
      toastSuccess(mode === "connect" ? `Connected ${container.trim()} to ${network.name}` : `Disconnected ${container.trim()} from ${network.name}`);
      onDone();
      onClose();
    }
  };
  const generalError = error && !fieldError(error, "container") && !fieldError(error, "aliases") ? error : null;
  const title = mode === "connect" ? `Connect a container to ${network.name}` : `Disconnect a container from ${network.name}`;
  return (
    <FormDialog
      title={title}
      onClose={onClose}
      onSubmit={submit}
      formId="attach-network-form"
      submitLabel={mode === "connect" ? "Connect" : "Disconnect"}
      busyLabel="Working…"
      busy={busy}
    >
      <ErrorBanner error={generalError} />
      <p className="muted small">
        Network {network.name} on host {network.host}
      </p>
      <Field label="Container" error={local ?? fieldError(error, "container")} hint="id, id prefix or name">
        <input value={container} onChange={(e) => setContainer(e.target.value)} autoComplete="off" />
      </Field>
      {mode === "connect" ? (
        <Field label="Aliases" error={fieldError(error, "aliases")} hint="extra DNS names, separated by spaces or commas">
          <input value={aliases} onChange={(e) => setAliases(e.target.value)} autoComplete="off" />
        </Field>
      ) : (
        <label className="check">
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />
          Force
        </label>
      )}
    </FormDialog>
  );
}

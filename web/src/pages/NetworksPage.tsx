// Networks on every host: create one, remove one, connect or disconnect a container.
import { useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { NetworkList } from "../api/types";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { OptionalReason } from "../components/ReasonDialog";
import { hostOptions } from "../components/HostSelect";
import { Labels } from "../components/Labels";
import { ResourceListPage } from "../components/ResourceListPage";
import { formatTime, shortId } from "../format";
import { useQuery } from "../hooks/useQuery";
import { can, useRole } from "../stores/auth";
import { toastSuccess } from "../stores/toasts";
import { useHosts } from "../stores/hosts";
import { AttachNetworkDialog } from "./resources/AttachNetworkDialog";
import { CreateNetworkDialog } from "./resources/CreateNetworkDialog";
import "./resources/resources.css";

type NetworkItem = NetworkList["items"][number];

/** Docker's own networks, which cannot be removed. */
const BUILT_IN = new Set(["bridge", "host", "none"]);

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
  const [removalReason, setRemovalReason] = useState("");
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
                await api.delete(paths.networks.remove(removing.id), { host: removing.host, reason: removalReason.trim() || undefined });
                toastSuccess(`Removed network ${removing.name}`);
                reload();
              }}
            >
              <p>
                Remove network <strong className="mono">{removing.name}</strong> from host <strong>{removing.host}</strong>?
              </p>
              {can(role, "admin") && <OptionalReason value={removalReason} onChange={setRemovalReason} />}
            </ConfirmDialog>
          )}
          {attaching && <AttachNetworkDialog {...attaching} onClose={() => setAttaching(null)} onDone={reload} />}
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
                      <button type="button" className="danger" aria-label={`Remove network ${network.name}`} onClick={() => {
                          setRemovalReason("");
                          setRemoving(network);
                        }}>
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

// Creating a network on a host: name, driver, subnet and gateway, internal and attachable,
// labels; admins may allow privileged options (with the reason recorded).
import { useCallback, useState } from "react";
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { components } from "../../api/schema";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Field, fieldError } from "../../components/Field";
import { FormDialog } from "../../components/FormDialog";
import { HostSelect } from "../../components/HostSelect";
import { PrivilegedFields } from "../../components/PrivilegedFields";
import { useSubmit } from "../../hooks/useSubmit";
import { toastSuccess } from "../../stores/toasts";
import { type CreateDialogProps, nameError, optional, parsePairs } from "./forms";

type CreateNetworkBody = components["schemas"]["CreateNetworkRequest"];

const DRIVERS = ["bridge", "overlay", "macvlan", "ipvlan"];

export function CreateNetworkDialog({
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

// Creating a network on a host: name, driver, subnet and gateway, internal and attachable,
// labels; admins may allow privileged options (with the reason recorded).
import { useState } from "react";
import { paths } from "../../api/paths";
import type { components } from "../../api/schema";
import { Field } from "../../components/Field";
import { CreateResourceDialog, useCreateResourceForm } from "./CreateResourceDialog";
import { type CreateDialogProps, optional } from "./forms";

type CreateNetworkBody = components["schemas"]["CreateNetworkRequest"];

const DRIVERS = ["bridge", "overlay", "macvlan", "ipvlan"];

export function CreateNetworkDialog({ admin, hostOptions, defaultHost, onClose, onCreated }: CreateDialogProps) {
  const [driver, setDriver] = useState("bridge");
  const [subnet, setSubnet] = useState("");
  const [gateway, setGateway] = useState("");
  const [internal, setInternal] = useState(false);
  const [attachable, setAttachable] = useState(false);
  const { form, submit } = useCreateResourceForm<CreateNetworkBody>({
    what: "network",
    path: paths.networks.create(),
    defaultHost,
    onCreated,
    onClose,
  });
  const onSubmit = () =>
    submit(
      {
        subnet: subnet.trim() && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(subnet.trim()) ? "a CIDR such as 172.30.0.0/24" : null,
        gateway: gateway.trim() && !subnet.trim() ? "a gateway needs a subnet" : null,
      },
      {
        driver,
        subnet: optional(subnet),
        gateway: optional(gateway),
        internal: internal || undefined,
        attachable: attachable || undefined,
      },
    );
  return (
    <CreateResourceDialog
      form={form}
      title="Create network"
      formId="create-network-form"
      admin={admin}
      hostOptions={hostOptions}
      onClose={onClose}
      onSubmit={onSubmit}
      privilegedWhat="subnet routes, macvlan, ipvlan"
      fields={["driver", "subnet", "gateway"]}
    >
      <Field label="Driver" error={form.message("driver")} hint="macvlan and ipvlan: admins, privileged">
        <select value={driver} onChange={(e) => setDriver(e.target.value)}>
          {DRIVERS.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </Field>
      <div className="form-grid">
        <Field label="Subnet" error={form.message("subnet")} hint="CIDR; empty: Docker picks one">
          <input value={subnet} onChange={(e) => setSubnet(e.target.value)} placeholder="172.30.0.0/24" autoComplete="off" />
        </Field>
        <Field label="Gateway" error={form.message("gateway")}>
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
    </CreateResourceDialog>
  );
}

// Connecting a container to a network (with DNS aliases) or disconnecting it (with force).
import { useCallback, useState } from "react";
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { NetworkList } from "../../api/types";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Field, fieldError, generalError } from "../../components/Field";
import { FormDialog } from "../../components/FormDialog";
import { useSubmit } from "../../hooks/useSubmit";
import { toastSuccess } from "../../stores/toasts";

type NetworkItem = NetworkList["items"][number];

export function AttachNetworkDialog({
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
      <ErrorBanner error={generalError(error, mode === "connect" ? ["container", "aliases"] : ["container"])} />
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

// Removing a host: dcp stops using it and forgets its credentials.
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { HostView } from "../../api/types";
import { ErrorBanner } from "../../components/ErrorBanner";
import { FormDialog } from "../../components/FormDialog";
import { useSubmit } from "../../hooks/useSubmit";
import { toastSuccess } from "../../stores/toasts";

export function RemoveHostModal({ host, onClose, onRemoved }: { host: HostView; onClose: () => void; onRemoved: () => void }) {
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

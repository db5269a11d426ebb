// Removing a host: dcp stops using it and forgets its credentials.
import { api } from "../../api/client";
import { paths } from "../../api/paths";
import type { HostView } from "../../api/types";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { toastSuccess } from "../../stores/toasts";

export function RemoveHostModal({ host, onClose, onRemoved }: { host: HostView; onClose: () => void; onRemoved: () => void }) {
  return (
    <ConfirmDialog
      title={`Remove ${host.name}?`}
      confirmLabel="Remove"
      onClose={onClose}
      onConfirm={async () => {
        await api.delete<void>(paths.hosts.remove(host.id));
        toastSuccess(`Host ${host.name} removed`);
        onRemoved();
      }}
      cancelDisabledWhileBusy
    >
      <p>
        dcp stops using <strong>{host.name}</strong> and forgets its credentials. Its containers are left running.
      </p>
    </ConfirmDialog>
  );
}

// A confirmation dialog: the action runs on confirm and its error stays in the dialog.
import type { ReactNode } from "react";
import { useSubmit } from "../hooks/useSubmit";
import { ErrorBanner } from "./ErrorBanner";
import { FormDialog } from "./FormDialog";

/** A confirmation dialog: the action runs on confirm and its error stays in the dialog. */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  danger = true,
  onConfirm,
  onClose,
  cancelDisabledWhileBusy = false,
}: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
  /** Also disables "Cancel" while the action runs (closing would not stop it). */
  cancelDisabledWhileBusy?: boolean;
}) {
  const { run, busy, error } = useSubmit(onConfirm);
  return (
    <FormDialog
      title={title}
      onClose={onClose}
      onSubmit={() =>
        run().then((result) => {
          if (result.ok) onClose();
        })
      }
      submitLabel={confirmLabel}
      busyLabel="Working…"
      busy={busy}
      danger={danger}
      cancelDisabled={cancelDisabledWhileBusy && busy}
    >
      <ErrorBanner error={error} />
      {children}
    </FormDialog>
  );
}

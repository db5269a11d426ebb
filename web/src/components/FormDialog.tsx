// A dialog whose footer is "Cancel" and one submit button. With `formId` the body is a
// form the button submits (so Enter in a field submits too); without it the button just
// calls `onSubmit` (confirmations).
import type { ReactNode } from "react";
import { Modal } from "./Modal";

export function FormDialog({
  title,
  onClose,
  onSubmit,
  submitLabel,
  busyLabel,
  busy,
  disabled = false,
  danger = false,
  formId,
  noValidate,
  cancelDisabled = false,
  children,
}: {
  title: string;
  onClose: () => void;
  /** Runs on submit (the form's default submission is prevented first). */
  onSubmit: () => unknown;
  submitLabel: string;
  /** The submit button's text while `busy`; without it the text stays `submitLabel`. */
  busyLabel?: string;
  busy: boolean;
  /** Disables the submit button besides while `busy` (e.g. nothing to submit yet). */
  disabled?: boolean;
  /** A danger (red) submit button instead of the primary one. */
  danger?: boolean;
  /** The id of the form wrapping `children`, which the submit button submits. */
  formId?: string;
  noValidate?: boolean;
  /** Also disables "Cancel" (e.g. while busy). */
  cancelDisabled?: boolean;
  children: ReactNode;
}) {
  const className = danger ? "danger" : "primary";
  const label = busy && busyLabel ? busyLabel : submitLabel;
  return (
    <Modal
      title={title}
      onClose={onClose}
      footer={
        <>
          <button type="button" onClick={onClose} disabled={cancelDisabled}>
            Cancel
          </button>
          {formId ? (
            <button type="submit" form={formId} className={className} disabled={busy || disabled}>
              {label}
            </button>
          ) : (
            <button type="button" className={className} disabled={busy || disabled} onClick={() => void onSubmit()}>
              {label}
            </button>
          )}
        </>
      }
    >
      {formId ? (
        <form
          id={formId}
          onSubmit={(event) => {
            event.preventDefault();
            void onSubmit();
          }}
          noValidate={noValidate}
        >
          {children}
        </form>
      ) : (
        children
      )}
    </Modal>
  );
}

// The fields an admin creating a resource uses to allow privileged options, with the
// reason recorded with the request.
import { Field } from "./Field";

/** For admins creating a resource: the box allowing privileged options (`what` says which)
 * and, once it is checked, the reason recorded with the request. */
export function PrivilegedFields({
  what,
  privileged,
  onPrivileged,
  reason,
  onReason,
  reasonError,
}: {
  what: string;
  privileged: boolean;
  onPrivileged: (checked: boolean) => void;
  reason: string;
  onReason: (reason: string) => void;
  reasonError: string | null | undefined;
}) {
  return (
    <>
      <label className="check">
        <input type="checkbox" checked={privileged} onChange={(e) => onPrivileged(e.target.checked)} />
        Allow privileged options ({what})
      </label>
      {privileged && (
        <Field label="Reason" error={reasonError}>
          <input value={reason} onChange={(e) => onReason(e.target.value)} />
        </Field>
      )}
    </>
  );
}

// The container's operations (admins and operators only): start, stop, restart,
// pause/unpause, kill, rename, remove. Each failure shows the API's message. On a container
// the platform protects (shown to admins only), each asks for a reason first.
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../../api/client";
import { paths, type ContainerVerb } from "../../api/paths";
import type { OperationOutcome } from "../../api/types";
import { Field, fieldError } from "../../components/Field";
import { FormDialog } from "../../components/FormDialog";
import { ReasonDialog, ReasonField } from "../../components/ReasonDialog";
import { useAction } from "../../hooks/useAction";
import "./container.css";

/** Which operations make sense in a state (the others are shown disabled). */
export function allowedActions(state: string): Record<ContainerVerb, boolean> {
  const running = state === "running";
  const paused = state === "paused";
  const restarting = state === "restarting";
  const up = running || paused || restarting;
  return {
    start: !up && state !== "removing",
    stop: up,
    restart: state !== "removing",
    pause: running,
    unpause: paused,
    kill: up,
  };
}

export function ContainerActions({
  id,
  host,
  name,
  state,
  protection,
  onChanged,
  onRenamed,
  onRemoved,
}: {
  id: string;
  host: string;
  name: string;
  state: string;
  /** Why the platform protects it, when it does: every action then asks for a reason. */
  protection?: string | null;
  onChanged: () => void;
  onRenamed: (name: string) => void;
  onRemoved: () => void;
}) {
  const [dialog, setDialog] = useState<"rename" | "remove" | null>(null);
  /** The action waiting for its reason. */
  const [asking, setAsking] = useState<{ label: string; run: (reason: string) => unknown } | null>(null);
  // Stable: the dialog re-focuses its first control whenever its onClose changes.
  const close = useCallback(() => setDialog(null), []);
  const closeReason = useCallback(() => setAsking(null), []);
  const post = (verb: ContainerVerb) => async (reason?: string) => {
    const outcome = await api.post<OperationOutcome>(paths.containers.action(id, verb), reason ? { reason } : {}, { host });
    onChanged();
    return outcome;
  };
  const start = useAction(post("start"), { what: "Start", success: `Started ${name}` });
  const stop = useAction(post("stop"), { what: "Stop", success: `Stopped ${name}` });
  const restart = useAction(post("restart"), { what: "Restart", success: `Restarted ${name}` });
  const pause = useAction(post("pause"), { what: "Pause", success: `Paused ${name}` });
  const unpause = useAction(post("unpause"), { what: "Unpause", success: `Unpaused ${name}` });
  const kill = useAction(post("kill"), { what: "Kill", success: `Killed ${name}` });
  const busy = start.busy || stop.busy || restart.busy || pause.busy || unpause.busy || kill.busy;
  const allowed = allowedActions(state);

  const button = (label: string, action: { run: (reason?: string) => Promise<unknown>; busy: boolean }, enabled: boolean, className?: string) => (
    <button
      type="button"
      className={className}
      disabled={busy || !enabled}
      aria-busy={action.busy || undefined}
      onClick={() => (protection ? setAsking({ label, run: (reason) => void action.run(reason) }) : void action.run())}
    >
      {label}
    </button>
  );

  return (
    <div className="cd-actions" role="group" aria-label="Container actions">
      {button("Start", start, allowed.start, "primary")}
      {button("Stop", stop, allowed.stop)}
      {button("Restart", restart, allowed.restart)}
      {state === "paused" ? button("Unpause", unpause, allowed.unpause) : button("Pause", pause, allowed.pause)}
      {button("Kill", kill, allowed.kill, "danger")}
      <button type="button" disabled={busy} onClick={() => setDialog("rename")}>
        Rename
      </button>
      <button type="button" className="danger" disabled={busy} onClick={() => setDialog("remove")}>
        Remove
      </button>
      {asking && protection && (
        <ReasonDialog
          title={`${asking.label} ${name}`}
          protection={protection}
          submitLabel={asking.label}
          danger={asking.label === "Kill"}
          onClose={closeReason}
          onReason={(reason) => {
            setAsking(null);
            asking.run(reason);
          }}
        />
      )}
      {dialog === "rename" && (
        <RenameDialog
          id={id}
          host={host}
          name={name}
          protection={protection}
          onClose={close}
          onRenamed={(next) => {
            setDialog(null);
            onRenamed(next);
          }}
        />
      )}
      {dialog === "remove" && (
        <RemoveDialog
          id={id}
          host={host}
          name={name}
          protection={protection}
          running={state === "running" || state === "paused" || state === "restarting"}
          onClose={close}
          onRemoved={() => {
            setDialog(null);
            onRemoved();
          }}
        />
      )}
    </div>
  );
}

function RenameDialog({
  id,
  host,
  name,
  protection,
  onClose,
  onRenamed,
}: {
  id: string;
  host: string;
  name: string;
  protection?: string | null;
  onClose: () => void;
  onRenamed: (name: string) => void;
}) {
  const [value, setValue] = useState(name);
  const [reason, setReason] = useState("");
  const inputRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    inputRef.current?.focus();
    inputRef.current?.select();
  }, []);
  const [error, setError] = useState<unknown>(null);
  const rename = useAction(
    async (next: string) => {
      setError(null);
      try {
        const body = protection ? { name: next, reason: reason.trim() } : { name: next };
        return await api.post<OperationOutcome>(paths.containers.rename(id), body, { host });
      } catch (failure) {
        setError(failure);
        throw failure;
      }
    },
    { what: "Rename", success: "Renamed" },
  );
  const submit = async () => {
    const next = value.trim();
    if (!next || next === name) return;
    const outcome = await rename.run(next);
    if (outcome) onRenamed(next);
  };
  return (
    <FormDialog
      title="Rename container"
      onClose={onClose}
      onSubmit={submit}
      formId="cd-rename-form"
      submitLabel="Rename"
      busy={rename.busy}
      disabled={!value.trim() || value.trim() === name || Boolean(protection && !reason.trim())}
    >
      {protection && <p className="warning">Protected: {protection}.</p>}
      <Field label="New name" error={fieldError(error, "name")}>
        <input ref={inputRef} value={value} onChange={(event) => setValue(event.target.value)} required />
      </Field>
      {protection && <ReasonField value={reason} onChange={setReason} />}
    </FormDialog>
  );
}

function RemoveDialog({
  id,
  host,
  name,
  running,
  protection,
  onClose,
  onRemoved,
}: {
  id: string;
  host: string;
  name: string;
  running: boolean;
  protection?: string | null;
  onClose: () => void;
  onRemoved: () => void;
}) {
  const [force, setForce] = useState(false);
  const [volumes, setVolumes] = useState(false);
  const [reason, setReason] = useState("");
  const remove = useAction(
    () =>
      api.delete<OperationOutcome>(paths.containers.remove(id), {
        host,
        force: force || undefined,
        volumes: volumes || undefined,
        reason: (protection && reason.trim()) || undefined,
      }),
    { what: "Remove", success: `Removed ${name}` },
  );
  const confirm = async () => {
    const outcome = await remove.run();
    if (outcome) onRemoved();
  };
  return (
    <FormDialog
      title="Remove container"
      onClose={onClose}
      onSubmit={confirm}
      submitLabel="Remove"
      busy={remove.busy}
      disabled={Boolean(protection && !reason.trim())}
      danger
    >
      {protection && <p className="warning">Protected: {protection}.</p>}
      <p>
        Remove <strong>{name}</strong>? This cannot be undone; its history is kept.
      </p>
      {running && !force && <p className="warning">The container is running: removing it needs “force”.</p>}
      <label className="check">
        <input type="checkbox" checked={force} onChange={(event) => setForce(event.target.checked)} />
        Force (stop it first if it is running)
      </label>
      <label className="check">
        <input type="checkbox" checked={volumes} onChange={(event) => setVolumes(event.target.checked)} />
        Remove anonymous volumes
      </label>
      {protection && <ReasonField value={reason} onChange={setReason} />}
    </FormDialog>
  );
}

// A wizard in a dialog, as `useWizard` runs it: the step indicator and the list of steps,
// the wizard's outcome once it is over, the last error (unless a step shows it on its
// field), the current step's form (the caller's step component, as children), why Next
// cannot be used yet, and the footer: Cancel (asking first), Previous, Next or Finish.
import { useCallback, useEffect, useId, useRef, type FormEvent, type ReactNode } from "react";
import { ApiError } from "../api/client";
import type { WizardController, WizardDefinition } from "../hooks/useWizard";
import { ErrorBanner } from "./ErrorBanner";
import { Modal } from "./Modal";
import { Spinner } from "./Spinner";
import "./wizard.css";

const BUSY_TEXT: Record<string, string> = {
  next: "Saving…",
  previous: "Going back…",
  test: "Testing…",
  finish: "Finishing…",
  cancel: "Cancelling…",
};

/** While the wizard loads only `definition`, `wizard` and `onClose` are used. */
export function WizardDialog<Forms>({
  definition,
  wizard,
  onClose,
  problem = null,
  showProblem = true,
  onNext,
  onFinish,
  children,
}: {
  definition: WizardDefinition<Forms>;
  wizard: WizardController<Forms>;
  /** Close the dialog; the wizard stays as it is, to be resumed. */
  onClose: () => void;
  /** Why Next (or Finish) cannot be used yet; null when it can. */
  problem?: string | null;
  /** Whether to say `problem` under the step (a step listing what it lacks need not). */
  showProblem?: boolean;
  onNext?: () => void;
  onFinish?: () => void;
  /** The current step. */
  children?: ReactNode;
}) {
  const formId = useId();
  // The dialog focuses its first field when `onClose` changes: keep it stable.
  const closeRef = useRef(onClose);
  useEffect(() => {
    closeRef.current = onClose;
  });
  const close = useCallback(() => closeRef.current(), []);

  const { state, position, busy, error, loadError } = wizard;
  if (!state || !position || !wizard.forms) {
    return (
      <Modal title={definition.title} onClose={close} wide>
        {loadError ? (
          <>
            <ErrorBanner error={loadError} onRetry={wizard.retryLoad} />
            <p className="muted">
              {loadError instanceof ApiError && loadError.status === 404 ? "This setup does not exist (or belongs to another user)." : null}
            </p>
          </>
        ) : (
          <Spinner label="Loading the setup…" />
        )}
      </Modal>
    );
  }

  const { step, current, total, first, last, inProgress } = position;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (busy || problem || !inProgress) return;
    (last ? onFinish : onNext)?.();
  };

  const bannerError = error instanceof ApiError && error.field && definition.fields.includes(error.field) ? null : error;

  const footer = !inProgress ? (
    <button type="button" onClick={close}>
      Close
    </button>
  ) : wizard.confirmingCancel ? (
    <div className="wizard-cancel-confirm" role="group" aria-label="Cancel the setup">
      <span>{definition.cancelQuestion}</span>
      <button type="button" className="danger" onClick={() => void wizard.cancel()} disabled={busy !== null}>
        Cancel setup
      </button>
      <button type="button" onClick={wizard.keepGoing} disabled={busy === "cancel"}>
        Keep going
      </button>
    </div>
  ) : (
    <>
      <button type="button" className="wizard-footer-left" onClick={wizard.askToCancel} disabled={busy !== null}>
        Cancel
      </button>
      {busy && (
        <span className="small muted wizard-busy" role="status">
          {definition.busyText?.[busy] ?? BUSY_TEXT[busy] ?? "Working…"}
        </span>
      )}
      <button type="button" onClick={() => void wizard.previous()} disabled={first || busy !== null}>
        Previous
      </button>
      {last ? (
        <button type="submit" form={formId} className="primary" disabled={busy !== null || problem !== null}>
          Finish
        </button>
      ) : (
        <button type="submit" form={formId} className="primary" disabled={busy !== null || problem !== null} title={problem ?? undefined}>
          Next
        </button>
      )}
    </>
  );

  return (
    <Modal title={definition.title} onClose={close} footer={footer} wide>
      <div className="wizard">
        <p className="wizard-indicator" data-testid="wizard-step-indicator">
          Step {current + 1} of {total}: <strong>{definition.stepTitle(step)}</strong>
        </p>
        <ol className="wizard-steps" aria-label="Steps">
          {state.steps.map((s, index) => (
            <li
              key={s.name}
              className={index === current ? "current" : index < current ? "done" : undefined}
              aria-current={index === current ? "step" : undefined}
            >
              <span className="wizard-step-number">{index + 1}</span> {definition.stepTitle(s.name)}
            </li>
          ))}
        </ol>

        {!inProgress && (
          <div className="notice">
            This setup is {state.status.replace(/_/g, " ")}
            {state.failure_reason ? `: ${state.failure_reason}` : "."}
          </div>
        )}
        <ErrorBanner error={bannerError} />

        <form id={formId} onSubmit={submit} noValidate>
          {children}
        </form>
        {inProgress && problem && showProblem && (
          <p className="small muted wizard-hint" data-testid="wizard-hint">
            {problem}
          </p>
        )}
        {inProgress && <p className="small muted">{definition.resumeHint}</p>}
      </div>
    </Modal>
  );
}

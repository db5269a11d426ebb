// The SSH host setup wizard in a dialog. The server keeps the wizard's state (it survives a
// reload or a restart), so this component loads it, shows its current step, and moves it
// with the API: each step's data is submitted (`PUT …/step`), then `next`; the test steps
// run `…/test`; the last step completes the wizard. The forms are kept per step while the
// dialog is open, and prefilled from the server's state when a wizard is resumed.
import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";
import { api, ApiError } from "../../api/client";
import { paths } from "../../api/paths";
import type { TestOutcome, WizardState } from "../../api/types";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Modal } from "../../components/Modal";
import { Spinner } from "../../components/Spinner";
import { AuthenticationStep } from "./AuthenticationStep";
import { ConfirmationStep } from "./ConfirmationStep";
import { ConnectionDetailsStep } from "./ConnectionDetailsStep";
import { DockerTestStep } from "./DockerTestStep";
import { SSHTestStep, sshTestProblem, type SshTestStatus } from "./SSHTestStep";
import {
  authProblem,
  authStepData,
  connectionMissing,
  connectionStepData,
  formsFromWizard,
  parseTags,
  stepData,
  stepTest,
  stepTitle,
  tagsProblem,
  text,
  usesStoredCredentials,
  type AuthForm,
  type CompletionView,
  type ConnectionForm,
  type WizardForms,
} from "./wizardData";
import "./wizard.css";

/** Fields the steps show the API's messages on (other errors go to the banner). */
const FIELDS = new Set([
  "connection_name",
  "host_url",
  "method",
  "key_id",
  "password",
  "private_key",
  "passphrase",
  "confirm_fingerprint",
  "tags",
]);

type Busy = "next" | "previous" | "test" | "confirm" | "finish" | "cancel" | null;

const BUSY_TEXT: Record<Exclude<Busy, null>, string> = {
  next: "Saving…",
  previous: "Going back…",
  test: "Testing…",
  confirm: "Confirming…",
  finish: "Registering the host…",
  cancel: "Cancelling…",
};

export function WizardModal({
  wizardId,
  onClose,
  onCancelled,
  onCompleted,
}: {
  wizardId: string;
  /** Close the dialog; the wizard stays as it is, to be resumed. */
  onClose: () => void;
  onCancelled: () => void;
  onCompleted: (completion: CompletionView) => void;
}) {
  const [wizard, setWizard] = useState<WizardState | null>(null);
  const [forms, setForms] = useState<WizardForms | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<Busy>(null);
  const [unconfirmed, setUnconfirmed] = useState(false);
  const [confirmingCancel, setConfirmingCancel] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const formId = useId();

  // The dialog focuses its first field when `onClose` changes: keep it stable.
  const closeRef = useRef(onClose);
  useEffect(() => {
    closeRef.current = onClose;
  });
  const close = useCallback(() => closeRef.current(), []);

  useEffect(() => {
    const controller = new AbortController();
    setWizard(null);
    setForms(null);
    setLoadError(null);
    api
      .get<WizardState>(paths.wizards.get(wizardId), undefined, controller.signal)
      .then((loaded) => {
        if (controller.signal.aborted) return;
        setWizard(loaded);
        setForms(formsFromWizard(loaded));
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setLoadError(err);
      });
    return () => controller.abort();
  }, [wizardId, attempt]);

  /** Runs a step action: busy meanwhile, its error kept to be shown. */
  const run = async (what: Exclude<Busy, null>, action: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const submitStep = async (data: unknown): Promise<WizardState> => {
    const updated = await api.put<WizardState>(paths.wizards.step(wizardId), { step_data: data });
    setWizard(updated);
    return updated;
  };

  const goNext = async () => {
    const updated = await api.post<WizardState>(paths.wizards.next(wizardId));
    setWizard(updated);
    setUnconfirmed(false);
  };

  if (!wizard || !forms) {
    return (
      <Modal title="SSH Host Setup" onClose={close} wide>
        {loadError ? (
          <>
            <ErrorBanner error={loadError} onRetry={() => setAttempt((n) => n + 1)} />
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

  const step = wizard.step_name;
  const current = wizard.current_step;
  const total = wizard.total_steps || wizard.steps.length;
  const first = current === 0;
  const last = current + 1 >= total;
  const inProgress = wizard.status === "in_progress";

  const setConnection = (connection: ConnectionForm) => setForms({ ...forms, connection });
  const setAuth = (auth: AuthForm) => setForms({ ...forms, auth });

  const sshTest = stepTest(wizard, "ssh_test");
  const confirmedFingerprint = text(stepData(wizard, "ssh_test")?.confirm_fingerprint);
  const sshStatus: SshTestStatus = {
    test: sshTest,
    confirmedFingerprint,
    confirmed: !unconfirmed && confirmedFingerprint !== null && confirmedFingerprint === text(sshTest?.details.fingerprint),
  };
  const dockerTest = stepTest(wizard, "docker_test");
  const method = text(stepData(wizard, "authentication")?.method);
  const target = (text(stepData(wizard, "connection")?.host_url) ?? "").replace(/^ssh:\/\//, "");

  /** Why Next (or Finish) cannot be used yet; null when it can. */
  const problem = ((): string | null => {
    switch (step) {
      case "connection":
        return connectionStepData(forms.connection)
          ? null
          : connectionMissing(forms.connection).length > 0
            ? "Fill in the connection details."
            : "Correct the fields marked in red.";
      case "authentication":
        return authProblem(forms.auth);
      case "ssh_test":
        return sshTestProblem(sshStatus);
      case "docker_test":
        return dockerTest?.passed ? null : dockerTest ? "The last test failed: fix the cause and run it again." : "Run the test.";
      case "confirmation":
        return tagsProblem(parseTags(forms.tags));
      default:
        return null;
    }
  })();

  const next = () =>
    run("next", async () => {
      switch (step) {
        case "connection": {
          const data = connectionStepData(forms.connection);
          if (!data) return;
          const saved = stepData(wizard, "connection");
          // The same data again would only forget the later steps' tests.
          if (saved?.connection_name !== data.connection_name || saved?.host_url !== data.host_url) await submitStep(data);
          break;
        }
        case "authentication": {
          if (!usesStoredCredentials(forms.auth)) {
            const data = authStepData(forms.auth);
            if (!data) return;
            const updated = await submitStep(data);
            // The secrets are sealed now: forget them here, keep what the server holds.
            setForms((f) => (f ? { ...f, auth: formsFromWizard(updated).auth } : f));
          }
          break;
        }
        case "ssh_test": {
          const fingerprint = text(sshTest?.details.fingerprint);
          if (fingerprint && sshStatus.confirmed && confirmedFingerprint !== fingerprint) {
            await submitStep({ confirm_fingerprint: fingerprint });
          }
          break;
        }
        default:
          break;
      }
      await goNext();
    });

  const previous = () =>
    run("previous", async () => {
      const updated = await api.post<WizardState>(paths.wizards.previous(wizardId));
      setWizard(updated);
      setUnconfirmed(false);
    });

  const runTest = () =>
    run("test", async () => {
      const outcome = await api.post<TestOutcome>(paths.wizards.test(wizardId), { test_type: step === "ssh_test" ? "ssh_connection" : "docker_api" });
      setWizard(outcome.wizard);
      setUnconfirmed(false);
    });

  const confirmFingerprint = (checked: boolean) => {
    if (!checked) {
      setUnconfirmed(true);
      return;
    }
    const fingerprint = text(sshTest?.details.fingerprint);
    if (!fingerprint) return;
    if (confirmedFingerprint === fingerprint) {
      setUnconfirmed(false);
      return;
    }
    // Submitted at once: with a password, the next test logs in to this key only.
    void run("confirm", async () => {
      await submitStep({ confirm_fingerprint: fingerprint });
      setUnconfirmed(false);
    });
  };

  const finish = () =>
    run("finish", async () => {
      const tags = parseTags(forms.tags);
      if (tagsProblem(tags)) return;
      await submitStep({ tags });
      const completion = await api.post<CompletionView>(paths.wizards.complete(wizardId));
      setWizard(completion.wizard);
      onCompleted(completion);
    });

  const cancel = () =>
    run("cancel", async () => {
      await api.post<WizardState>(paths.wizards.cancel(wizardId));
      setConfirmingCancel(false);
      onCancelled();
    });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (busy || problem || !inProgress) return;
    void (last ? finish() : next());
  };

  const bannerError = error instanceof ApiError && error.field && FIELDS.has(error.field) ? null : error;

  const footer = !inProgress ? (
    <button type="button" onClick={close}>
      Close
    </button>
  ) : confirmingCancel ? (
    <div className="wizard-cancel-confirm" role="group" aria-label="Cancel the setup">
      <span>Cancel this setup? The credentials it saved are forgotten.</span>
      <button type="button" className="danger" onClick={() => void cancel()} disabled={busy !== null}>
        Cancel setup
      </button>
      <button type="button" onClick={() => setConfirmingCancel(false)} disabled={busy === "cancel"}>
        Keep going
      </button>
    </div>
  ) : (
    <>
      <button type="button" className="wizard-footer-left" onClick={() => setConfirmingCancel(true)} disabled={busy !== null}>
        Cancel
      </button>
      {busy && (
        <span className="small muted wizard-busy" role="status">
          {BUSY_TEXT[busy]}
        </span>
      )}
      <button type="button" onClick={() => void previous()} disabled={first || busy !== null}>
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
    <Modal title="SSH Host Setup" onClose={close} footer={footer} wide>
      <div className="wizard">
        <p className="wizard-indicator" data-testid="wizard-step-indicator">
          Step {current + 1} of {total}: <strong>{stepTitle(step)}</strong>
        </p>
        <ol className="wizard-steps" aria-label="Steps">
          {wizard.steps.map((s, index) => (
            <li
              key={s.name}
              className={index === current ? "current" : index < current ? "done" : undefined}
              aria-current={index === current ? "step" : undefined}
            >
              <span className="wizard-step-number">{index + 1}</span> {stepTitle(s.name)}
            </li>
          ))}
        </ol>

        {!inProgress && (
          <div className="notice">
            This setup is {wizard.status.replace(/_/g, " ")}
            {wizard.failure_reason ? `: ${wizard.failure_reason}` : "."}
          </div>
        )}
        <ErrorBanner error={bannerError} />

        <form id={formId} onSubmit={submit} noValidate>
          {step === "connection" && (
            <ConnectionDetailsStep value={forms.connection} onChange={setConnection} error={error} disabled={busy !== null || !inProgress} />
          )}
          {step === "authentication" && (
            <AuthenticationStep
              value={forms.auth}
              onChange={setAuth}
              connection={forms.connection}
              error={error}
              disabled={busy !== null || !inProgress}
            />
          )}
          {step === "ssh_test" && (
            <SSHTestStep
              status={sshStatus}
              method={method}
              target={target}
              busy={busy !== null || !inProgress}
              running={busy === "test"}
              confirming={busy === "confirm"}
              onRun={() => void runTest()}
              onConfirm={confirmFingerprint}
              error={error}
            />
          )}
          {step === "docker_test" && <DockerTestStep test={dockerTest} busy={busy !== null || !inProgress} running={busy === "test"} onRun={() => void runTest()} />}
          {step === "confirmation" && (
            <ConfirmationStep
              wizard={wizard}
              tags={forms.tags}
              onTagsChange={(tags) => setForms({ ...forms, tags })}
              error={error}
              disabled={busy !== null || !inProgress}
            />
          )}
        </form>
        {inProgress && problem && step !== "connection" && (
          <p className="small muted wizard-hint" data-testid="wizard-hint">
            {problem}
          </p>
        )}
        {inProgress && <p className="small muted">Closing this dialog keeps the setup: resume it later from the Hosts page.</p>}
      </div>
    </Modal>
  );
}

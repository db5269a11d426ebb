// The SSH host setup wizard in a dialog: `useWizard` with the SSH host setup's definition,
// `WizardDialog` around its five steps, and what each step submits before Next — the
// connection (unless unchanged), new credentials (sealed at once, so the form forgets
// them), the fingerprint the admin confirmed — and the tags Finish submits. The forms are
// kept per step while the dialog is open, and prefilled from the server's state when a
// wizard is resumed.
import { useState } from "react";
import type { WizardState } from "../../api/types";
import { WizardDialog } from "../../components/WizardDialog";
import { useWizard } from "../../hooks/useWizard";
import { AuthenticationStep } from "./AuthenticationStep";
import { ConfirmationStep } from "./ConfirmationStep";
import { ConnectionDetailsStep } from "./ConnectionDetailsStep";
import { DockerTestStep } from "./DockerTestStep";
import { SSHTestStep } from "./SSHTestStep";
import { SSH_HOST_SETUP, sshTestStatus, stepProblem } from "./sshHostSetup";
import { authStepData, usesStoredCredentials } from "./authForm";
import { connectionStepData } from "./connectionForm";
import { type CompletionView, formsFromWizard, parseTags, stepData, stepTest, tagsProblem, text } from "./wizardData";
import "./wizard.css";

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
  const wizard = useWizard(SSH_HOST_SETUP, wizardId, { onCompleted, onCancelled });
  // The state in which the admin unticked the fingerprint box: it stays unticked until the
  // state changes (a test, a move, a saved confirmation).
  const [untickedIn, setUntickedIn] = useState<WizardState | null>(null);

  const { state, forms, position, busy, error, updateForms, submitStep } = wizard;
  if (!state || !forms || !position) return <WizardDialog definition={SSH_HOST_SETUP} wizard={wizard} onClose={onClose} />;

  const { step, inProgress } = position;
  const ssh = sshTestStatus(state, untickedIn === state);
  const fingerprint = text(ssh.test?.details.fingerprint);
  const dockerTest = stepTest(state, "docker_test");
  const problem = stepProblem(step, forms, ssh, dockerTest);
  const disabled = busy !== null || !inProgress;

  /** Submits what the current step holds; false when there is nothing to submit yet. */
  const saveStep = async (): Promise<boolean> => {
    switch (step) {
      case "connection": {
        const data = connectionStepData(forms.connection);
        if (!data) return false;
        const saved = stepData(state, "connection");
        // The same data again would only forget the later steps' tests.
        if (saved?.connection_name !== data.connection_name || saved?.host_url !== data.host_url) await submitStep(data);
        return true;
      }
      case "authentication": {
        if (usesStoredCredentials(forms.auth)) return true;
        const data = authStepData(forms.auth);
        if (!data) return false;
        const updated = await submitStep(data);
        // The secrets are sealed now: forget them here, keep what the server holds.
        updateForms((f) => ({ ...f, auth: formsFromWizard(updated).auth }));
        return true;
      }
      case "ssh_test":
        if (fingerprint && ssh.confirmed && ssh.confirmedFingerprint !== fingerprint) await submitStep({ confirm_fingerprint: fingerprint });
        return true;
      default:
        return true;
    }
  };

  const saveTags = async (): Promise<boolean> => {
    const tags = parseTags(forms.tags);
    if (tagsProblem(tags)) return false;
    await submitStep({ tags });
    return true;
  };

  const confirmFingerprint = (checked: boolean) => {
    if (!checked) {
      setUntickedIn(state);
      return;
    }
    if (!fingerprint) return;
    if (ssh.confirmedFingerprint === fingerprint) {
      setUntickedIn(null);
      return;
    }
    // Submitted at once: with a password, the next test logs in to this key only.
    void wizard.run("confirm", async () => {
      await submitStep({ confirm_fingerprint: fingerprint });
      setUntickedIn(null);
    });
  };

  const runTest = () => void wizard.test();

  return (
    <WizardDialog
      definition={SSH_HOST_SETUP}
      wizard={wizard}
      onClose={onClose}
      problem={problem}
      showProblem={step !== "connection"}
      onNext={() => void wizard.next(saveStep)}
      onFinish={() => void wizard.finish(saveTags)}
    >
      {step === "connection" && (
        <ConnectionDetailsStep value={forms.connection} onChange={(connection) => updateForms((f) => ({ ...f, connection }))} error={error} disabled={disabled} />
      )}
      {step === "authentication" && (
        <AuthenticationStep
          value={forms.auth}
          onChange={(auth) => updateForms((f) => ({ ...f, auth }))}
          connection={forms.connection}
          error={error}
          disabled={disabled}
        />
      )}
      {step === "ssh_test" && (
        <SSHTestStep
          status={ssh}
          method={text(stepData(state, "authentication")?.method)}
          target={(text(stepData(state, "connection")?.host_url) ?? "").replace(/^ssh:\/\//, "")}
          busy={disabled}
          running={busy === "test"}
          confirming={busy === "confirm"}
          onRun={runTest}
          onConfirm={confirmFingerprint}
          error={error}
        />
      )}
      {step === "docker_test" && <DockerTestStep test={dockerTest} busy={disabled} running={busy === "test"} onRun={runTest} />}
      {step === "confirmation" && (
        <ConfirmationStep wizard={state} tags={forms.tags} onTagsChange={(tags) => updateForms((f) => ({ ...f, tags }))} error={error} disabled={disabled} />
      )}
    </WizardDialog>
  );
}

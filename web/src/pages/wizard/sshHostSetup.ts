// The SSH host setup as `useWizard` runs it: its definition (type, steps, tests, texts),
// and what each of its steps still needs before Next.
import type { WizardState } from "../../api/types";
import type { WizardDefinition } from "../../hooks/useWizard";
import { sshTestProblem, type SshTestStatus } from "./SSHTestStep";
import { authProblem } from "./authForm";
import { connectionMissing, connectionStepData } from "./connectionForm";
import { formsFromWizard, parseTags, stepData, stepTest, type StepTestView, stepTitle, tagsProblem, text, type WizardForms } from "./wizardData";

export const SSH_HOST_SETUP: WizardDefinition<WizardForms> = {
  type: "ssh_host_setup",
  title: "SSH Host Setup",
  stepTitle,
  tests: { ssh_test: "ssh_connection", docker_test: "docker_api" },
  fields: ["connection_name", "host_url", "method", "key_id", "password", "private_key", "passphrase", "confirm_fingerprint", "tags"],
  forms: formsFromWizard,
  cancelQuestion: "Cancel this setup? The credentials it saved are forgotten.",
  resumeHint: "Closing this dialog keeps the setup: resume it later from the Hosts page.",
  busyText: { confirm: "Confirming…", finish: "Registering the host…" },
};

/** The SSH test step's last test and its fingerprint confirmation; `unticked`: the admin
 * has just unticked the box (the server still has the confirmation). */
export function sshTestStatus(wizard: WizardState, unticked: boolean): SshTestStatus {
  const test = stepTest(wizard, "ssh_test");
  const confirmedFingerprint = text(stepData(wizard, "ssh_test")?.confirm_fingerprint);
  return {
    test,
    confirmedFingerprint,
    confirmed: !unticked && confirmedFingerprint !== null && confirmedFingerprint === text(test?.details.fingerprint),
  };
}

/** Why Next (or Finish) cannot be used yet on `step`; null when it can. */
export function stepProblem(step: string, forms: WizardForms, ssh: SshTestStatus, docker: StepTestView | null): string | null {
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
      return sshTestProblem(ssh);
    case "docker_test":
      return docker?.passed ? null : docker ? "The last test failed: fix the cause and run it again." : "Run the test.";
    case "confirmation":
      return tagsProblem(parseTags(forms.tags));
    default:
      return null;
  }
}

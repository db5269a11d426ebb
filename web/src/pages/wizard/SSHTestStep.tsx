// Step 3: connect over SSH, show the host key, and have the admin confirm its fingerprint
// (it is then pinned: any other key is refused later). With a password, the first test
// only reads the key — the password goes only to a confirmed key — so the test runs again
// after the confirmation to log in.
import { fieldError } from "../../components/Field";
import { TestRunBar } from "../../components/TestRunBar";
import { TestFailure } from "./TestFailure";
import { type StepTestView, text } from "./wizardData";

export interface SshTestStatus {
  /** The step's last test, if any. */
  test: StepTestView | null;
  /** The fingerprint the server has as confirmed (the step's data). */
  confirmedFingerprint: string | null;
  /** The checkbox. */
  confirmed: boolean;
}

/** What the SSH test step still needs before Next, in words; null when it is done. */
export function sshTestProblem(status: SshTestStatus): string | null {
  const { test } = status;
  if (!test) return "Run the test.";
  if (!test.passed) return "The last test failed: fix the cause and run it again.";
  const fingerprint = text(test.details.fingerprint);
  if (!status.confirmed || !fingerprint || status.confirmedFingerprint !== fingerprint) return "Confirm the host key fingerprint.";
  if (test.details.authenticated !== true) return "Run the test again to log in.";
  return null;
}

export function SSHTestStep({
  status,
  method,
  target,
  busy,
  running = false,
  confirming = false,
  onRun,
  onConfirm,
  error,
}: {
  status: SshTestStatus;
  /** The authentication method chosen (a password needs a second test). */
  method: string | null;
  /** `user@host:port`, for the text. */
  target: string;
  busy: boolean;
  running?: boolean;
  /** The confirmation is being submitted (the box shows it checked meanwhile). */
  confirming?: boolean;
  onRun: () => void;
  onConfirm: (checked: boolean) => void;
  error?: unknown;
}) {
  const { test } = status;
  const details = test?.details ?? {};
  const fingerprint = test?.passed ? text(details.fingerprint) : null;
  const authenticated = details.authenticated === true;
  const password = method === "password";
  const waitingForLogin = Boolean(test?.passed && fingerprint && !authenticated);
  const pinned = Boolean(fingerprint && status.confirmedFingerprint === fingerprint);

  return (
    <div className="wizard-step" data-testid="step-ssh-test">
      <p className="muted">
        dcp connects to <code>{target}</code> and shows the key the host presents. Compare its fingerprint with the host's own (on the
        host: <code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code>) before confirming it.
      </p>
      {password && (
        <div className="notice">
          With a password the test runs twice: the first run only reads the host key (dcp sends the password only to a key you have
          confirmed); after you confirm the fingerprint, run the test again to log in.
        </div>
      )}
      <TestRunBar busy={busy} running={running} testedAt={test?.tested_at} onRun={onRun} />

      {test && !test.passed && <TestFailure details={details} what="The SSH test" />}

      {test?.passed && fingerprint && (
        <div className="panel wizard-result" data-testid="ssh-test-result">
          <p className={authenticated ? "wizard-ok" : "wizard-pending"}>
            {authenticated
              ? "SSH test passed: connected and authenticated."
              : "Connected: the host key was read, but dcp has not logged in yet."}
          </p>
          <dl className="kv">
            <dt>Host key type</dt>
            <dd data-testid="host-key-type">{text(details.algorithm) ?? "—"}</dd>
            <dt>Fingerprint</dt>
            <dd className="mono" data-testid="host-key-fingerprint">
              {fingerprint}
            </dd>
            {text(details.host_key) && (
              <>
                <dt>Host key</dt>
                <dd className="mono small">{text(details.host_key)}</dd>
              </>
            )}
          </dl>
          <label className="check wizard-confirm">
            <input
              type="checkbox"
              name="confirm_fingerprint"
              value={fingerprint}
              checked={(status.confirmed && pinned) || confirming}
              disabled={busy}
              onChange={(event) => onConfirm(event.target.checked)}
            />
            I have checked this fingerprint
          </label>
          {fieldError(error, "confirm_fingerprint") && <p className="field-message">{fieldError(error, "confirm_fingerprint")}</p>}
          {waitingForLogin && (
            <div className="warning" data-testid="ssh-test-again">
              {pinned
                ? "Fingerprint confirmed. Now run the test again: dcp will log in with the password, to this key only."
                : "Confirm the fingerprint, then run the test again to log in with the password."}
            </div>
          )}
          {authenticated && pinned && status.confirmed && <p className="wizard-ok">The host key will be pinned. Go on to the Docker test.</p>}
        </div>
      )}
    </div>
  );
}

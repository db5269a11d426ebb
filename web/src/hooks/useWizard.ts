// A wizard the server runs (`/api/v1/wizards`). Its state lives on the server and survives
// a reload or a restart, so the UI loads it, keeps the forms of its steps while it is open,
// and moves it with the API: a step's data is submitted (`PUT …/step`), then `next`; a
// tested step runs `…/test`; the last step completes it. `useWizard` is that state machine
// for any wizard type (the SSH host setup, later stacks and swarm), given the type's
// definition; `WizardDialog` shows it. A page keeps the open wizard in its URL
// (`?wizard=<id>`, `useWizardInUrl`), so a reload reopens it where it was.
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { CompletionView, TestOutcome, WizardState } from "../api/types";
import { navigate, useSearchParams } from "../router";

/** What sets one wizard type apart. A module constant: the hook reads it at every render. */
export interface WizardDefinition<Forms> {
  /** The server's `wizard_type`. */
  type: string;
  /** The dialog's title. */
  title: string;
  /** A step's title, from its name (the server has the steps and their order). */
  stepTitle: (name: string) => string;
  /** The test (`test_type`) each tested step runs, by the step's name. */
  tests: Record<string, string>;
  /** The API error fields the steps show under their inputs (other errors go to the banner). */
  fields: readonly string[];
  /** The steps' forms from the server's state (prefilled when a wizard is resumed). */
  forms: (wizard: WizardState) => Forms;
  /** The question "Cancel" asks before cancelling. */
  cancelQuestion: string;
  /** Said while a wizard is in progress: closing the dialog keeps it, and where to resume it. */
  resumeHint: string;
  /** What the dialog says while a task runs, where the default text will not do. */
  busyText?: Record<string, string>;
}

/** Where a wizard is: its current step and whether it can still move. */
export interface WizardPosition {
  /** The current step's name. */
  step: string;
  /** The current step's index, from 0. */
  current: number;
  total: number;
  first: boolean;
  last: boolean;
  /** Neither completed, cancelled nor failed. */
  inProgress: boolean;
}

export function wizardPosition(wizard: WizardState): WizardPosition {
  const current = wizard.current_step;
  const total = wizard.total_steps || wizard.steps.length;
  return {
    step: wizard.step_name,
    current,
    total,
    first: current === 0,
    last: current + 1 >= total,
    inProgress: wizard.status === "in_progress",
  };
}

/** The state and actions `useWizard` gives its view and its steps. */
export interface WizardController<Forms> {
  /** The server's state; null until it is loaded. */
  state: WizardState | null;
  /** The steps' forms; null until the state is loaded. */
  forms: Forms | null;
  /** Null until the state is loaded. */
  position: WizardPosition | null;
  /** Why the state could not be loaded. */
  loadError: unknown;
  retryLoad: () => void;
  /** The last task's error (cleared when the next one starts). */
  error: unknown;
  /** The task running (`next`, `previous`, `test`, `finish`, `cancel` or the caller's own). */
  busy: string | null;
  /** "Cancel" was pressed: the dialog asks before cancelling. */
  confirmingCancel: boolean;
  updateForms: (update: (forms: Forms) => Forms) => void;
  /** Runs `action` as the task `task`: busy meanwhile, its error kept. */
  run: (task: string, action: () => Promise<void>) => Promise<void>;
  /** Submits the current step's data (inside `run`); the server's new state is kept. */
  submitStep: (data: unknown) => Promise<WizardState>;
  /** Moves on; `beforeNext` (submitting the step's data) may stop it by returning false. */
  next: (beforeNext?: () => Promise<boolean>) => Promise<void>;
  previous: () => Promise<void>;
  /** Runs the current step's test (`definition.tests`). */
  test: () => Promise<void>;
  /** Completes the wizard (then `onCompleted`); `beforeComplete` may stop it by returning false. */
  finish: (beforeComplete?: () => Promise<boolean>) => Promise<void>;
  askToCancel: () => void;
  keepGoing: () => void;
  /** Cancels the wizard (then `onCancelled`). */
  cancel: () => Promise<void>;
}

export function useWizard<Forms>(
  definition: WizardDefinition<Forms>,
  wizardId: string,
  { onCompleted, onCancelled }: { onCompleted: (completion: CompletionView) => void; onCancelled: () => void },
): WizardController<Forms> {
  const [state, setState] = useState<WizardState | null>(null);
  const [forms, setForms] = useState<Forms | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirmingCancel, setConfirmingCancel] = useState(false);

  // Read when the state arrives, so that a new definition object does not load it again.
  const formsOf = useRef(definition.forms);
  useEffect(() => {
    formsOf.current = definition.forms;
  });

  useEffect(() => {
    const controller = new AbortController();
    setState(null);
    setForms(null);
    setLoadError(null);
    api
      .get<WizardState>(paths.wizards.get(wizardId), undefined, controller.signal)
      .then((loaded) => {
        if (controller.signal.aborted) return;
        setState(loaded);
        setForms(formsOf.current(loaded));
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setLoadError(err);
      });
    return () => controller.abort();
  }, [wizardId, attempt]);

  const retryLoad = useCallback(() => setAttempt((n) => n + 1), []);
  const updateForms = useCallback((update: (forms: Forms) => Forms) => setForms((f) => (f === null ? f : update(f))), []);

  const run = async (task: string, action: () => Promise<void>) => {
    setBusy(task);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const submitStep = async (data: unknown) => {
    const updated = await api.put<WizardState>(paths.wizards.step(wizardId), { step_data: data });
    setState(updated);
    return updated;
  };

  const next = (beforeNext?: () => Promise<boolean>) =>
    run("next", async () => {
      if (beforeNext && !(await beforeNext())) return;
      setState(await api.post<WizardState>(paths.wizards.next(wizardId)));
    });

  const previous = () =>
    run("previous", async () => {
      setState(await api.post<WizardState>(paths.wizards.previous(wizardId)));
    });

  const test = () =>
    run("test", async () => {
      const testType = definition.tests[state?.step_name ?? ""];
      const outcome = await api.post<TestOutcome>(paths.wizards.test(wizardId), { test_type: testType });
      setState(outcome.wizard);
    });

  const finish = (beforeComplete?: () => Promise<boolean>) =>
    run("finish", async () => {
      if (beforeComplete && !(await beforeComplete())) return;
      const completion = await api.post<CompletionView>(paths.wizards.complete(wizardId));
      setState(completion.wizard);
      onCompleted(completion);
    });

  const cancel = () =>
    run("cancel", async () => {
      await api.post<WizardState>(paths.wizards.cancel(wizardId));
      setConfirmingCancel(false);
      onCancelled();
    });

  return {
    state,
    forms,
    position: state ? wizardPosition(state) : null,
    loadError,
    retryLoad,
    error,
    busy,
    confirmingCancel,
    updateForms,
    run,
    submitStep,
    next,
    previous,
    test,
    finish,
    askToCancel: () => setConfirmingCancel(true),
    keepGoing: () => setConfirmingCancel(false),
    cancel,
  };
}

/** Starts a wizard of the definition's type; `metadata` stays with it (e.g. where it was opened). */
export function startWizard(definition: Pick<WizardDefinition<unknown>, "type">, metadata: Record<string, unknown>): Promise<WizardState> {
  return api.post<WizardState>(paths.wizards.start(), { wizard_type: definition.type, metadata });
}

/** Puts `?wizard=<id>` in the URL (or takes it out), replacing the history entry. */
function showWizard(id: string | null): void {
  const params = new URLSearchParams(window.location.search);
  if (id) params.set("wizard", id);
  else params.delete("wizard");
  const query = params.toString();
  navigate(`${window.location.pathname}${query ? `?${query}` : ""}`, { replace: true });
}

/** The wizard open on this page (`?wizard=<id>`, so that a reload reopens it), and `show`
 * to open another or (with null) close it. */
export function useWizardInUrl(): { openId: string | null; show: (id: string | null) => void } {
  return { openId: useSearchParams().get("wizard"), show: showWizard };
}

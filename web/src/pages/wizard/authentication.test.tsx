import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { AuthenticationStep } from "./AuthenticationStep";
import { type AuthForm, authProblem, authStepData, EMPTY_AUTH, usesStoredCredentials } from "./authForm";
import type { ConnectionForm } from "./connectionForm";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const connection: ConnectionForm = { connection_name: "h", hostname: "h.example.com", port: "22", username: "deploy" };

describe("authStepData", () => {
  it("sends the generated key's id", () => {
    expect(authStepData({ ...EMPTY_AUTH, method: "generated_key" })).toBeNull();
    expect(authStepData({ ...EMPTY_AUTH, method: "generated_key", key_id: "k-1", public_key: "ssh-ed25519 AAA" })).toEqual({
      method: "generated_key",
      key_id: "k-1",
    });
  });

  it("sends an imported key, with its passphrase only when there is one", () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
    expect(authStepData({ ...EMPTY_AUTH, method: "imported_key", private_key: "  " })).toBeNull();
    expect(authStepData({ ...EMPTY_AUTH, method: "imported_key", private_key: key })).toEqual({ method: "imported_key", private_key: key });
    expect(authStepData({ ...EMPTY_AUTH, method: "imported_key", private_key: key, passphrase: "pp" })).toEqual({
      method: "imported_key",
      private_key: key,
      passphrase: "pp",
    });
  });

  it("sends the password as typed", () => {
    expect(authStepData({ ...EMPTY_AUTH, method: "password" })).toBeNull();
    expect(authStepData({ ...EMPTY_AUTH, method: "password", password: " secret " })).toEqual({ method: "password", password: " secret " });
  });

  it("never mixes the fields of other methods", () => {
    const form: AuthForm = { ...EMPTY_AUTH, method: "password", password: "pw", private_key: "KEY", passphrase: "pp", key_id: "k" };
    expect(authStepData(form)).toEqual({ method: "password", password: "pw" });
  });
});

describe("stored credentials", () => {
  const stored: AuthForm = { ...EMPTY_AUTH, method: "password", stored: { method: "password", secret_id: "s", public_key: null } };

  it("are kept when nothing new is typed", () => {
    expect(usesStoredCredentials(stored)).toBe(true);
    expect(authProblem(stored)).toBeNull();
  });

  it("are replaced by a new secret or another method", () => {
    expect(usesStoredCredentials({ ...stored, password: "new" })).toBe(false);
    expect(usesStoredCredentials({ ...stored, method: "imported_key" })).toBe(false);
    expect(authProblem({ ...stored, method: "imported_key" })).toBe("Paste the private key.");
  });

  it("says what is missing without them", () => {
    expect(authProblem(EMPTY_AUTH)).toBe("Generate a key first.");
    expect(authProblem({ ...EMPTY_AUTH, method: "password" })).toBe("Enter the password.");
  });
});

function Harness({ initial, onValue }: { initial: AuthForm; onValue?: (v: AuthForm) => void }) {
  const [value, setValue] = useState(initial);
  return (
    <AuthenticationStep
      value={value}
      connection={connection}
      onChange={(v) => {
        setValue(v);
        onValue?.(v);
      }}
    />
  );
}

function radio(value: string): HTMLInputElement {
  const element = document.querySelector<HTMLInputElement>(`input[type="radio"][name="method"][value="${value}"]`);
  if (!element) throw new Error(`no radio ${value}`);
  return element;
}

describe("AuthenticationStep", () => {
  it("shows the fields of the chosen method", () => {
    let last: AuthForm = EMPTY_AUTH;
    render(<Harness initial={EMPTY_AUTH} onValue={(v) => (last = v)} />);
    expect(radio("generated_key").checked).toBe(true);
    expect(screen.getByRole("button", { name: "Generate key" })).toBeTruthy();
    expect(document.querySelector('textarea[name="private_key"]')).toBeNull();

    fireEvent.click(radio("imported_key"));
    const key = document.querySelector<HTMLTextAreaElement>('textarea[name="private_key"]')!;
    fireEvent.change(key, { target: { value: "KEY" } });
    fireEvent.change(document.querySelector('input[name="passphrase"]')!, { target: { value: "pp" } });
    expect(authStepData(last)).toEqual({ method: "imported_key", private_key: "KEY", passphrase: "pp" });

    fireEvent.click(radio("password"));
    expect(document.querySelector('textarea[name="private_key"]')).toBeNull();
    fireEvent.change(document.querySelector('input[name="password"]')!, { target: { value: "hunter2" } });
    expect(authStepData(last)).toEqual({ method: "password", password: "hunter2" });
  });

  it("generates a key, shows its public key with the instruction, and submits its id", async () => {
    const fetchMock = vi.fn(
      async () =>
        new Response(
          JSON.stringify({ key_id: "0190-key", public_key: "ssh-ed25519 AAAAC3Nz dcp@h.example.com", fingerprint: "SHA256:x", algorithm: "ssh-ed25519" }),
          { status: 201, headers: { "content-type": "application/json" } },
        ),
    );
    vi.stubGlobal("fetch", fetchMock);
    let last: AuthForm = EMPTY_AUTH;
    render(<Harness initial={EMPTY_AUTH} onValue={(v) => (last = v)} />);
    fireEvent.click(screen.getByRole("button", { name: "Generate key" }));
    await waitFor(() => expect(screen.getByTestId("public-key")).toBeTruthy());
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/v1/wizards/generate-ssh-key?comment=dcp%40h.example.com");
    expect(init.method).toBe("POST");
    expect((screen.getByTestId("public-key") as HTMLTextAreaElement).value).toBe("ssh-ed25519 AAAAC3Nz dcp@h.example.com");
    expect(screen.getAllByText("~/.ssh/authorized_keys").length).toBeGreaterThan(0);
    expect(screen.getByRole("button", { name: "Copy" })).toBeTruthy();
    expect(authStepData(last)).toEqual({ method: "generated_key", key_id: "0190-key" });
  });

  it("shows the API's message when the key cannot be generated", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(
        async () =>
          new Response(
            JSON.stringify({ error: { code: "VALIDATION_ERROR", message: "at most 128 printable characters without spaces", field: "comment", details: {} } }),
            { status: 400, headers: { "content-type": "application/json" } },
          ),
      ),
    );
    render(<Harness initial={EMPTY_AUTH} />);
    fireEvent.click(screen.getByRole("button", { name: "Generate key" }));
    await waitFor(() => expect(screen.getByText("at most 128 printable characters without spaces")).toBeTruthy());
  });

  it("says a stored password is kept unless another is typed", () => {
    render(<Harness initial={{ ...EMPTY_AUTH, method: "password", stored: { method: "password", secret_id: "s", public_key: null } }} />);
    expect(screen.getByText(/A password is saved for this setup/)).toBeTruthy();
    expect((document.querySelector('input[name="password"]') as HTMLInputElement).value).toBe("");
  });
});

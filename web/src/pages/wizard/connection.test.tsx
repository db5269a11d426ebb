import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { ApiError } from "../../api/client";
import { ConnectionDetailsStep } from "./ConnectionDetailsStep";
import { buildHostUrl, type ConnectionForm, connectionMissing, connectionStepData, EMPTY_CONNECTION, parseHostUrl, validateConnection } from "./connectionForm";
import { formsFromWizard } from "./wizardData";
import type { WizardState } from "../../api/types";

afterEach(cleanup);

const valid: ConnectionForm = { connection_name: "build-server", hostname: "build.example.com", port: "2222", username: "deploy" };

describe("host_url", () => {
  it("is ssh://user@host:port from the separate inputs", () => {
    expect(buildHostUrl(valid)).toBe("ssh://deploy@build.example.com:2222");
    expect(buildHostUrl({ hostname: " 10.0.0.5 ", port: "22", username: " root " })).toBe("ssh://root@10.0.0.5:22");
  });

  it("uses port 22 when the port is left empty", () => {
    expect(buildHostUrl({ hostname: "h", port: "", username: "u" })).toBe("ssh://u@h:22");
  });

  it("puts an IPv6 address in brackets, typed with or without them", () => {
    expect(buildHostUrl({ hostname: "::1", port: "22", username: "u" })).toBe("ssh://u@[::1]:22");
    expect(buildHostUrl({ hostname: "[fe80::1]", port: "2200", username: "u" })).toBe("ssh://u@[fe80::1]:2200");
  });

  it("is read back into the inputs", () => {
    expect(parseHostUrl("ssh://deploy@build.example.com:2222")).toEqual({ username: "deploy", hostname: "build.example.com", port: "2222" });
    expect(parseHostUrl("ssh://u@[::1]:22")).toEqual({ username: "u", hostname: "::1", port: "22" });
    expect(parseHostUrl("ssh://u@host")).toEqual({ username: "u", hostname: "host", port: "22" });
    expect(parseHostUrl("http://host")).toBeNull();
  });

  it("is the step data with the name once the form is valid", () => {
    expect(connectionStepData(valid)).toEqual({ connection_name: "build-server", host_url: "ssh://deploy@build.example.com:2222" });
    expect(connectionStepData({ ...valid, hostname: "" })).toBeNull();
  });
});

describe("validateConnection", () => {
  it("accepts a complete form", () => {
    expect(validateConnection(valid)).toEqual({});
  });

  it("refuses an empty host", () => {
    expect(validateConnection({ ...valid, hostname: "  " }).hostname).toMatch(/host name or IP/);
  });

  it("refuses a malformed host", () => {
    expect(validateConnection({ ...valid, hostname: "bad host" }).hostname).toMatch(/Not a valid/);
    expect(validateConnection({ ...valid, hostname: "-leading.example.com" }).hostname).toMatch(/Not a valid/);
    expect(validateConnection({ ...valid, hostname: "::1" })).toEqual({});
  });

  it("refuses a port out of range or not a number", () => {
    expect(validateConnection({ ...valid, port: "0" }).port).toMatch(/1 to 65535/);
    expect(validateConnection({ ...valid, port: "65536" }).port).toMatch(/1 to 65535/);
    expect(validateConnection({ ...valid, port: "22a" }).port).toMatch(/1 to 65535/);
    expect(validateConnection({ ...valid, port: "" }).port).toMatch(/SSH port/);
    expect(validateConnection({ ...valid, port: "65535" }).port).toBeUndefined();
  });

  it("refuses a missing or malformed user", () => {
    expect(validateConnection({ ...valid, username: "" }).username).toMatch(/Enter the SSH user/);
    expect(validateConnection({ ...valid, username: "1abc" }).username).toMatch(/starting with a letter/);
    expect(validateConnection({ ...valid, username: "_svc.dcp-1" }).username).toBeUndefined();
  });

  it("lists the empty fields", () => {
    expect(connectionMissing(valid)).toEqual([]);
    expect(connectionMissing(EMPTY_CONNECTION)).toEqual(["name", "host", "user"]);
    expect(connectionMissing({ ...valid, port: " ", username: "" })).toEqual(["port", "user"]);
  });

  it("refuses a missing name, surrounding spaces and 'local'", () => {
    expect(validateConnection({ ...valid, connection_name: "" }).connection_name).toMatch(/Enter a name/);
    expect(validateConnection({ ...valid, connection_name: " x" }).connection_name).toMatch(/spaces/);
    expect(validateConnection({ ...valid, connection_name: "LOCAL" }).connection_name).toMatch(/local/);
    expect(validateConnection({ ...valid, connection_name: "x".repeat(65) }).connection_name).toMatch(/64/);
  });
});

function Harness({ initial, error, onValue }: { initial: ConnectionForm; error?: unknown; onValue?: (v: ConnectionForm) => void }) {
  const [value, setValue] = useState(initial);
  return (
    <ConnectionDetailsStep
      value={value}
      error={error}
      onChange={(v) => {
        setValue(v);
        onValue?.(v);
      }}
    />
  );
}

function input(name: string): HTMLInputElement {
  const element = document.querySelector<HTMLInputElement>(`input[name="${name}"]`);
  if (!element) throw new Error(`no input ${name}`);
  return element;
}

describe("ConnectionDetailsStep", () => {
  it("has the inputs, a default port of 22, and shows the URL it builds", () => {
    let last: ConnectionForm = EMPTY_CONNECTION;
    render(<Harness initial={EMPTY_CONNECTION} onValue={(v) => (last = v)} />);
    expect(input("port").value).toBe("22");
    fireEvent.change(input("connection_name"), { target: { value: "web-1" } });
    fireEvent.change(input("hostname"), { target: { value: "web1.internal" } });
    fireEvent.change(input("username"), { target: { value: "ops" } });
    expect(screen.getByTestId("host-url").textContent).toBe("ssh://ops@web1.internal:22");
    fireEvent.change(input("port"), { target: { value: "2022" } });
    expect(screen.getByTestId("host-url").textContent).toBe("ssh://ops@web1.internal:2022");
    expect(last).toEqual({ connection_name: "web-1", hostname: "web1.internal", port: "2022", username: "ops" });
  });

  it("shows a filled-in field's problem, and lists the empty fields", () => {
    render(<Harness initial={{ ...valid, hostname: "" }} />);
    expect(screen.getByTestId("connection-missing").textContent).toBe("Still needed: host.");
    expect(screen.getByTestId("host-url").textContent).toBe("ssh://user@host:port");
    fireEvent.change(input("hostname"), { target: { value: "bad host" } });
    expect(screen.getByText("Not a valid host name or IP address.")).toBeTruthy();
    expect(screen.queryByTestId("connection-missing")).toBeNull();
    fireEvent.change(input("hostname"), { target: { value: "ok.example.com" } });
    fireEvent.change(input("port"), { target: { value: "70000" } });
    expect(screen.getByText("The port is a number from 1 to 65535.")).toBeTruthy();
    fireEvent.change(input("port"), { target: { value: "22" } });
    fireEvent.change(input("username"), { target: { value: "" } });
    fireEvent.change(input("connection_name"), { target: { value: "" } });
    expect(screen.getByTestId("connection-missing").textContent).toBe("Still needed: name, user.");
  });

  it("shows the API's message on the field it names", () => {
    const error = new ApiError(409, "CONFLICT", "a host named 'build-server' already exists", "connection_name");
    render(<Harness initial={valid} error={error} />);
    expect(screen.getByText("a host named 'build-server' already exists")).toBeTruthy();
    const urlError = new ApiError(400, "VALIDATION_ERROR", "ssh://user@host[:port]", "host_url");
    cleanup();
    render(<Harness initial={valid} error={urlError} />);
    expect(screen.getByText("ssh://user@host[:port]")).toBeTruthy();
  });
});

describe("formsFromWizard", () => {
  it("prefills the connection and knows stored credentials without their secret", () => {
    const wizard = {
      id: "w1",
      wizard_type: "ssh_host_setup",
      metadata: {},
      status: "in_progress",
      current_step: 1,
      total_steps: 5,
      step_name: "authentication",
      steps: [
        { name: "connection", tested: false, data: { connection_name: "pw", host_url: "ssh://dcp-ssh@127.0.0.1:52222" } },
        { name: "authentication", tested: false, data: { method: "password", secret_id: "s-1" } },
        { name: "ssh_test", tested: true, data: null },
        { name: "docker_test", tested: true, data: null },
        { name: "confirmation", tested: false, data: { tags: ["a", "b"] } },
      ],
    } as unknown as WizardState;
    const forms = formsFromWizard(wizard);
    expect(forms.connection).toEqual({ connection_name: "pw", hostname: "127.0.0.1", port: "52222", username: "dcp-ssh" });
    expect(forms.auth.method).toBe("password");
    expect(forms.auth.password).toBe("");
    expect(forms.auth.stored).toEqual({ method: "password", secret_id: "s-1", public_key: null });
    expect(forms.tags).toBe("a, b");
  });
});

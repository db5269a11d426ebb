import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import type { WizardState } from "../../api/types";
import { ConfirmationStep } from "./ConfirmationStep";
import { parseTags, tagsProblem } from "./wizardData";

afterEach(cleanup);

describe("parseTags", () => {
  it("splits on commas, trims, drops empty and repeated tags", () => {
    expect(parseTags("")).toEqual([]);
    expect(parseTags("  ")).toEqual([]);
    expect(parseTags("prod")).toEqual(["prod"]);
    expect(parseTags(" prod , eu-west,,gpu ,prod,")).toEqual(["prod", "eu-west", "gpu"]);
  });

  it("checks the tags as the server does", () => {
    expect(tagsProblem(["prod", "eu-west", "rack:3", "v1.2_x"])).toBeNull();
    expect(tagsProblem(["two words"])).toMatch(/'two words'/);
    expect(tagsProblem(["x".repeat(65)])).not.toBeNull();
    expect(tagsProblem(Array.from({ length: 33 }, (_, i) => `t${i}`))).toBe("At most 32 tags.");
  });
});

const wizard = {
  id: "w",
  wizard_type: "ssh_host_setup",
  metadata: {},
  status: "in_progress",
  current_step: 4,
  total_steps: 5,
  step_name: "confirmation",
  steps: [
    { name: "connection", tested: false, data: { connection_name: "web-1", host_url: "ssh://ops@web1:22" } },
    { name: "authentication", tested: false, data: { method: "generated_key", secret_id: "k" } },
    {
      name: "ssh_test",
      tested: true,
      data: { confirm_fingerprint: "SHA256:abc" },
      test: { passed: true, details: { fingerprint: "SHA256:abc", algorithm: "ssh-ed25519", authenticated: true } },
    },
    { name: "docker_test", tested: true, data: null, test: { passed: true, details: { version: "27.1", api_version: "1.46", os: "Debian" } } },
    { name: "confirmation", tested: false, data: null },
  ],
} as unknown as WizardState;

function Harness() {
  const [tags, setTags] = useState("");
  return <ConfirmationStep wizard={wizard} tags={tags} onTagsChange={setTags} />;
}

describe("ConfirmationStep", () => {
  it("summarises the setup and checks the tags typed", () => {
    render(<Harness />);
    const summary = screen.getByTestId("wizard-summary").textContent ?? "";
    expect(summary).toContain("web-1");
    expect(summary).toContain("ssh://ops@web1:22");
    expect(summary).toContain("Generated key");
    expect(summary).toContain("SHA256:abc");
    expect(summary).toContain("Engine 27.1 (API 1.46)");
    const input = document.querySelector<HTMLInputElement>('input[name="tags"]')!;
    fireEvent.change(input, { target: { value: "prod, eu-west" } });
    expect(screen.getByText("prod")).toBeTruthy();
    expect(screen.getByText("eu-west")).toBeTruthy();
    fireEvent.change(input, { target: { value: "prod, bad tag" } });
    expect(screen.getByText(/'bad tag': a tag has/)).toBeTruthy();
  });
});

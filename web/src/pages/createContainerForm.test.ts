import { describe, expect, it } from "vitest";
import { buildCreateRequest, EMPTY_FORM, FormError, hostReaching, parsePairs, parsePorts, splitArgs, type ContainerForm } from "./createContainerForm";

const form = (patch: Partial<ContainerForm>): ContainerForm => ({ ...EMPTY_FORM, image: "dcp-test/busybox:latest", ...patch });

function refusal(fn: () => unknown): FormError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FormError) return error;
    throw error;
  }
  throw new Error("expected a FormError");
}

describe("splitArgs", () => {
  it("splits like a shell quotes, without a shell", () => {
    expect(splitArgs(`sh -c "echo 'hi there'; sleep 1"`)).toEqual(["sh", "-c", "echo 'hi there'; sleep 1"]);
    expect(splitArgs(`echo a\\ b '' "x\\"y"`)).toEqual(["echo", "a b", "", 'x"y']);
    expect(splitArgs("  ")).toEqual([]);
    expect(refusal(() => splitArgs(`echo "open`)).field).toBe("command");
  });
});

describe("parsers", () => {
  it("reads env pairs, keeping = in values and refusing duplicates", () => {
    expect(parsePairs("A=1\n# comment\nB=x=y\nEMPTY", "env")).toEqual({ A: "1", B: "x=y", EMPTY: "" });
    expect(refusal(() => parsePairs("A=1\nA=2", "env")).message).toContain("A is given twice");
    expect(refusal(() => parsePairs("=1", "labels")).field).toBe("labels");
  });

  it("reads port mappings", () => {
    expect(parsePorts("8080:80\n127.0.0.1:5353:53/udp\n9000")).toEqual([
      { host_port: 8080, container_port: 80 },
      { host_ip: "127.0.0.1", host_port: 5353, container_port: 53, protocol: "udp" },
      { container_port: 9000 },
    ]);
    expect(refusal(() => parsePorts("70000:80")).field).toBe("ports");
    expect(refusal(() => parsePorts("80/icmp")).message).toContain("tcp, udp or sctp");
  });
});

describe("buildCreateRequest", () => {
  it("builds the request from the safe fields", () => {
    const request = buildCreateRequest(
      form({ name: "web", command: "sh -c 'echo hello'", env: "A=1", ports: "8080:80", volumes: "data:/data:ro", restart: "unless-stopped", memoryMiB: "64", cpus: "0.5", start: true }),
      "operator",
    );
    expect(request).toEqual({
      image: "dcp-test/busybox:latest",
      start: true,
      name: "web",
      command: ["sh", "-c", "echo hello"],
      env: { A: "1" },
      ports: [{ host_port: 8080, container_port: 80 }],
      volumes: [{ source: "data", target: "/data", read_only: true }],
      restart_policy: { name: "unless-stopped" },
      memory_bytes: 64 * 1024 * 1024,
      cpus: 0.5,
    });
  });

  it("requires an image and sane limits", () => {
    expect(refusal(() => buildCreateRequest(form({ image: " " }), "admin")).field).toBe("image");
    expect(refusal(() => buildCreateRequest(form({ memoryMiB: "2" }), "admin")).field).toBe("memory_bytes");
    expect(refusal(() => buildCreateRequest(form({ cpus: "-1" }), "admin")).field).toBe("cpus");
    expect(refusal(() => buildCreateRequest(form({ volumes: "/etc:/host-etc" }), "admin")).message).toContain("bind mount");
  });

  it("finds what reaches the host as the server's policy does", () => {
    expect(hostReaching(form({}))).toEqual([]);
    expect(hostReaching(form({ ipcMode: "private", network: "my-net" }))).toEqual([]);
    expect(hostReaching(form({ privileged: true, capAdd: "NET_ADMIN", binds: "/srv:/srv", network: "host", ipcMode: "host", pidMode: "host" }))).toEqual([
      "privileged",
      "cap_add",
      "binds",
      "pid_mode",
      "ipc_mode",
      "network",
    ]);
  });

  it("refuses host access to operators and asks admins for a reason", () => {
    const dangerous = form({ privileged: true, binds: "/srv/data:/data" });
    expect(refusal(() => buildCreateRequest(dangerous, "operator")).message).toContain("Only admins");
    expect(refusal(() => buildCreateRequest(dangerous, "admin")).field).toBe("reason");
    expect(buildCreateRequest({ ...dangerous, reason: "backup agent" }, "admin")).toMatchObject({
      privileged: true,
      binds: [{ source: "/srv/data", target: "/data" }],
      allow_privileged: true,
      reason: "backup agent",
    });
  });
});

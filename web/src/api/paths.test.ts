import { describe, expect, it } from "vitest";
import { ApiClient } from "./client";
import { apiPath, paths, socketPath, withQuery } from "./paths";

describe("paths", () => {
  it("fills the server's templates", () => {
    expect(paths.containers.list()).toBe("/api/v1/containers");
    expect(paths.containers.get("web")).toBe("/api/v1/containers/web");
    expect(paths.containers.action("web", "unpause")).toBe("/api/v1/containers/web/unpause");
    expect(paths.networks.attach("n1", "disconnect")).toBe("/api/v1/networks/n1/disconnect");
    expect(paths.wizards.step("w-1")).toBe("/api/v1/wizards/w-1/step");
    expect(paths.wsTickets()).toBe("/api/v1/ws-tickets");
    expect(apiPath("/api/v1/volumes/{name}", { name: "data" })).toBe("/api/v1/volumes/data");
  });

  it("percent-encodes each path segment", () => {
    // An image tag with a registry port and a namespace stays one segment.
    expect(paths.images.remove("registry:5000/team/app:1.0")).toBe("/api/v1/images/registry%3A5000%2Fteam%2Fapp%3A1.0");
    expect(paths.volumes.remove("my data#1")).toBe("/api/v1/volumes/my%20data%231");
    expect(paths.containers.history("a?b&c")).toBe("/api/v1/containers/a%3Fb%26c/history");
    expect(paths.hosts.test("../x")).toBe("/api/v1/hosts/..%2Fx/test");
    expect(paths.users.update("ü")).toBe("/api/v1/users/%C3%BC");
  });

  it("builds the socket paths", () => {
    expect(paths.ws.events()).toBe("/ws/events");
    expect(paths.ws.logs("web/1")).toBe("/ws/containers/web%2F1/logs");
    expect(paths.ws.stats("web")).toBe("/ws/containers/web/stats");
    expect(paths.ws.exec("web")).toBe("/ws/containers/web/exec");
    expect(paths.ws.task("op 1")).toBe("/ws/tasks/op%201");
    expect(socketPath("/ws/containers/{id}/logs", { id: "x" })).toBe("/ws/containers/x/logs");
  });
});

describe("withQuery", () => {
  it("leaves out undefined, null and empty values, and keeps false and 0", () => {
    expect(withQuery("/p", { a: undefined, b: null, c: "", d: false, e: 0 })).toBe("/p?d=false&e=0");
    expect(withQuery("/p", {})).toBe("/p");
    expect(withQuery("/p")).toBe("/p");
  });

  it("form-encodes keys and values, in the order given", () => {
    expect(withQuery("/p", { q: "a b&c=d", host: "remote-1", all: true, limit: 100 })).toBe("/p?q=a+b%26c%3Dd&host=remote-1&all=true&limit=100");
    expect(withQuery("/p", { "odd key": "ü/?" })).toBe("/p?odd+key=%C3%BC%2F%3F");
  });

  it("adds to a query the path already has", () => {
    expect(withQuery("/p?a=1", { b: 2 })).toBe("/p?a=1&b=2");
  });

  it("is how the client builds its URLs", () => {
    const client = new ApiClient("http://dcp.test");
    expect(client.url(paths.containers.get("a b"), { host: "h 1", force: true, volumes: undefined })).toBe(
      "http://dcp.test/api/v1/containers/a%20b?host=h+1&force=true",
    );
  });
});

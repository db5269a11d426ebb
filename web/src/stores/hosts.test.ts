import { act, renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useEvents } from "./events";
import { resetHosts, useHostList, useHostNames } from "./hosts";

const hosts = [
  { id: "local", name: "local", kind: "local", status: "active" },
  { id: "01a2-ssh", name: "edge", kind: "ssh", status: "active" },
];

afterEach(() => {
  vi.unstubAllGlobals();
  resetHosts();
});

describe("hosts store", () => {
  it("loads the list once for every component, names hosts, and reloads on a host event", async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify(hosts), { status: 200 }));
    vi.stubGlobal("fetch", fetch);
    const list = renderHook(() => useHostList());
    const names = renderHook(() => useHostNames());
    await waitFor(() => expect(list.result.current.data).toHaveLength(2));
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(names.result.current("01a2-ssh")).toBe("edge");
    expect(names.result.current("unknown-id")).toBe("unknown-id");

    act(() =>
      useEvents.getState().receive({
        event_id: "e1",
        global_position: 1,
        type: "HostDisabled",
        event_version: "1",
        aggregate: { type: "host", id: "01a2-ssh", sequence: 2 },
        time: "",
        actor: {},
        data: {},
      }),
    );
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(2));
    list.unmount();
    names.unmount();
  });
});

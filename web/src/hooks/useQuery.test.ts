import { act, renderHook, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { useQuery } from "./useQuery";

describe("useQuery", () => {
  it("lets a running load finish when a reload is asked for, then loads once more", async () => {
    const started: { signal: AbortSignal; resolve: (value: number) => void }[] = [];
    const load = (signal: AbortSignal) => new Promise<number>((resolve) => started.push({ signal, resolve }));
    const { result } = renderHook(() => useQuery(load, []));
    await waitFor(() => expect(started).toHaveLength(1));
    act(() => {
      result.current.reload();
      result.current.reload();
    });
    expect(started).toHaveLength(1);
    expect(started[0]!.signal.aborted).toBe(false);
    await act(async () => started[0]!.resolve(1));
    expect(result.current.data).toBe(1);
    await waitFor(() => expect(started).toHaveLength(2));
    await act(async () => started[1]!.resolve(2));
    expect(result.current).toMatchObject({ data: 2, loading: false });
    expect(started).toHaveLength(2);
  });

  it("abandons a load whose parameters changed", async () => {
    const started: { signal: AbortSignal; resolve: (value: string) => void }[] = [];
    const { result, rerender } = renderHook(({ host }) => useQuery((signal) => new Promise<string>((resolve) => started.push({ signal, resolve: (v) => resolve(`${host}:${v}`) })), [host]), {
      initialProps: { host: "a" },
    });
    await waitFor(() => expect(started).toHaveLength(1));
    rerender({ host: "b" });
    await waitFor(() => expect(started).toHaveLength(2));
    expect(started[0]!.signal.aborted).toBe(true);
    await act(async () => started[0]!.resolve("old"));
    await act(async () => started[1]!.resolve("new"));
    expect(result.current.data).toBe("b:new");
  });
});

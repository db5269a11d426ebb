// Unit test setup: each test starts with an empty document (vitest runs without globals, so
// Testing Library's automatic cleanup is not registered by itself).
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => cleanup());

import { createContextKey } from "@connectrpc/connect";
import type { Client } from "../login/model.js";

/** The caller as the transport saw it, passed from the HTTP layer into Connect handlers. */
export const clientKey = createContextKey<Client>({ ip: "unknown" }, { description: "the calling client" });

import type RequestClient from "twilio/lib/base/RequestClient.js";
import type * as TwilioResponse from "twilio/lib/http/response.js";
import { twilioSdk } from "./sdk.js";

export const TWILIO_DEFAULT_API_BASE_URL = "https://api.twilio.com";

export interface TwilioHttpClientOptions {
  /** Where the SDK's requests go instead of https://api.twilio.com (a fake in tests, a proxy elsewhere). */
  readonly baseUrl: string;
  /** Socket-idle timeout of each HTTP request. */
  readonly timeoutMs: number;
  /** Retries after a 429, with the SDK's exponential backoff and full jitter. */
  readonly maxRetries: number;
  readonly maxRetryDelayMs: number;
}

// The signal of each send in progress, by a tag. The SDK builds its own axios options and offers no way to pass
// a signal down, and one client is shared by all concurrent sends. So a send's request is tagged while the SDK
// is still on the send's synchronous path (`messages.create` reaches `request` below without an await), with a
// header that a request interceptor swaps for the signal; a 429 retry resends that config, signal and all.
// This was an AsyncLocalStorage: on Node 20 an enabled one runs a hook on every promise of the process, which
// measured ~10 % of a login request's CPU.
const SEND_TAG = "x-otp-auth-send";
const signals = new Map<string, AbortSignal>();
let sends = 0;
/** The tag of the send whose synchronous part is running, if any. */
let tagging: string | undefined;

/** Runs `fn` so that every request it causes, 429 retries included, is aborted when `signal` fires. */
export async function withSendSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  sends += 1;
  const tag = String(sends);
  signals.set(tag, signal);
  tagging = tag;
  let work: Promise<T>;
  try {
    work = fn();
  } finally {
    tagging = undefined;
  }
  try {
    return await work;
  } finally {
    signals.delete(tag);
  }
}

/**
 * The SDK's own RequestClient (its auth header, form encoding, timeouts and 429 retries), with two additions:
 * requests go to `baseUrl`, and a send's abort signal reaches every request, so a retry cannot fire after the
 * send has given up and a fallback provider has already delivered the same code.
 */
export type TwilioHttpClient = RequestClient & { rewrite(uri: string): string };

// The class is defined on first use, since its base class is the SDK's.
function defineClient(): new (opts: TwilioHttpClientOptions) => TwilioHttpClient {
  return class TwilioHttpClient extends twilioSdk().RequestClient {
    readonly #base: URL | undefined;

    constructor(opts: TwilioHttpClientOptions) {
      super({
        timeout: opts.timeoutMs,
        autoRetry: opts.maxRetries > 0,
        maxRetries: opts.maxRetries,
        maxRetryDelay: opts.maxRetryDelayMs,
      });
      const base = new URL(opts.baseUrl);
      // At the default, leave URIs alone: the SDK may have added a region or edge to the host.
      this.#base = base.href === new URL(TWILIO_DEFAULT_API_BASE_URL).href ? undefined : base;
      this.axios.interceptors.request.use((config) => {
        const tag = config.headers.get(SEND_TAG);
        if (typeof tag === "string") {
          config.headers.delete(SEND_TAG);
          const signal = signals.get(tag);
          if (signal) config.signal = signal;
        }
        return config;
      });
    }

    override request<TData>(
      opts: RequestClient.RequestOptions<TData>,
    ): Promise<TwilioResponse.default<TData>> {
      const tag = tagging;
      const headers = tag === undefined ? opts.headers : { ...opts.headers, [SEND_TAG]: tag };
      return super.request({ ...opts, uri: this.rewrite(opts.uri), ...(headers ? { headers } : {}) });
    }

    /** Replaces the origin (and prefixes the base path, for a base behind a path-routing proxy). */
    rewrite(uri: string): string {
      if (!this.#base) return uri;
      const original = new URL(uri);
      const prefix = this.#base.pathname.replace(/\/+$/, "");
      return `${this.#base.origin}${prefix}${original.pathname}${original.search}`;
    }
  };
}

let clientClass: ReturnType<typeof defineClient> | undefined;

/** A Twilio HTTP client as above; the SDK is loaded on the first call. */
export function createTwilioHttpClient(opts: TwilioHttpClientOptions): TwilioHttpClient {
  clientClass ??= defineClient();
  return new clientClass(opts);
}

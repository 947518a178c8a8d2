import { AsyncLocalStorage } from "node:async_hooks";
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

// The signal of the send in progress. The SDK builds its own axios options and offers no way to pass a
// signal down, and one client is shared by all concurrent sends, so the signal travels with the async context.
const sendSignal = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` so that every request it causes, 429 retries included, is aborted when `signal` fires. */
export function withSendSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  return sendSignal.run(signal, fn);
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
        const signal = sendSignal.getStore();
        if (signal) config.signal = signal;
        return config;
      });
    }

    override request<TData>(
      opts: RequestClient.RequestOptions<TData>,
    ): Promise<TwilioResponse.default<TData>> {
      return super.request({ ...opts, uri: this.rewrite(opts.uri) });
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

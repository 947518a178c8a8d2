import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError, type ConnectRouter, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { CodeFailure, LoginEvents, SmsOutcome } from "../login/ports.js";
import { codeNames, watchAnswer } from "./answer-code.js";
import { type Protocol, rpcProtocolOf } from "./protocol.js";

/** Set by the interceptor on the requests it counts, so the router's own count skips them. */
const observedKey = createContextKey(false, { description: "counted by the metrics interceptor" });

/** Latency buckets from 0.5 ms (a cached refusal) to 5 s (a slow SMS provider), in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One procedure's series for one protocol, resolved once and kept: `labels()` hashes its arguments. */
interface Series {
  readonly latency: Histogram.Internal<"procedure" | "protocol">;
  readonly byCode: Map<string, Counter.Internal>;
  readonly counter: Counter<"procedure" | "protocol" | "code">;
  readonly procedure: string;
  readonly protocol: Protocol;
}

/**
 * The service's Prometheus metrics, on a registry of its own (never prom-client's global, so two apps in one
 * process, as in tests, do not collide). It is also the login core's `LoginEvents` listener.
 */
export class Metrics implements LoginEvents {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: "otp_auth_requests_total",
    help: "Requests answered, by procedure (RPC path or REST path), protocol and Connect code",
    labelNames: ["procedure", "protocol", "code"] as const,
    registers: [this.registry],
  });
  readonly #latency = new Histogram({
    name: "otp_auth_request_duration_seconds",
    help: "Time from request to answer, by procedure and protocol",
    labelNames: ["procedure", "protocol"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #codesSent = new Counter({
    name: "otp_auth_codes_sent_total",
    help: "Codes generated, stored and handed to an SMS provider",
    registers: [this.registry],
  });
  readonly #codesVerified = new Counter({
    name: "otp_auth_codes_verified_total",
    help: "Codes verified successfully (logins)",
    registers: [this.registry],
  });
  readonly #codesFailed = new Counter({
    name: "otp_auth_codes_failed_total",
    help: "Verifications refused with a code still live: wrong code, or attempts exhausted",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly #codesExpired = new Counter({
    name: "otp_auth_codes_expired_total",
    help: "Verifications that found no live code: expired, already used or never sent",
    registers: [this.registry],
  });
  readonly #smsSends = new Counter({
    name: "otp_auth_sms_sends_total",
    help: "SMS sends by provider and outcome (sent, or the failure kind)",
    labelNames: ["provider", "outcome"] as const,
    registers: [this.registry],
  });
  readonly #deliveryReceipts = new Counter({
    name: "otp_auth_sms_delivery_receipts_total",
    help: "Delivery receipts for our messages, by provider, destination country (ISO region) and status",
    labelNames: ["provider", "country", "status"] as const,
    registers: [this.registry],
  });
  readonly #limitRefusals = new Counter({
    name: "otp_auth_limit_refusals_total",
    help: "Requests refused by a rate limit, by limit",
    labelNames: ["limit"] as const,
    registers: [this.registry],
  });
  readonly #rpcSeries = new Map<DescMethod, Map<Protocol, Series>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Exposes the final delivery statuses Twilio reports to `/webhooks/twilio/status`, read at scrape time
   * from the webhook's own counter (which is monotonic, so the counter stays one).
   */
  watchDeliveryStatus(source: {
    snapshot(): { byStatus: Record<string, number>; rejected: number; duplicates: number };
  }): void {
    new Counter({
      name: "otp_auth_sms_delivery_status_total",
      help: "Final SMS delivery statuses reported by the provider's signed status callback, each message's status once; status=rejected counts unsigned callbacks, status=duplicate signed repeats of a counted one",
      labelNames: ["status"] as const,
      registers: [this.registry],
      collect() {
        const { byStatus, rejected, duplicates } = source.snapshot();
        this.reset();
        for (const [status, n] of Object.entries(byStatus)) this.inc({ status }, n);
        this.inc({ status: "rejected" }, rejected);
        this.inc({ status: "duplicate" }, duplicates);
      },
    });
  }

  /** Reads the SMS in-flight cap's numbers at each scrape, so a send pays nothing for them. */
  watchSmsInFlight(source: { readonly inFlight: number; readonly refused: number }): void {
    new Gauge({
      name: "otp_auth_sms_in_flight",
      help: "SMS sends handed to a provider and not yet answered, in this process",
      registers: [this.registry],
      collect() {
        this.set(source.inFlight);
      },
    });
    new Counter({
      name: "otp_auth_sms_in_flight_refused_total",
      help: "SMS sends refused at once because SMS_MAX_IN_FLIGHT sends were already waiting on the provider",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(source.refused);
      },
    });
  }

  /** The exposition text and its content type, for `GET /metrics`. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Observes one REST path; resolved at start-up so a request only adds numbers. */
  rest(path: string): { done(code: string, startMs: number): void } {
    const series = this.#series(path, "rest");
    return { done: (code, startMs) => this.observe(series, code, startMs) };
  }

  /**
   * Observes requests to paths nothing serves, under the fixed procedure "unknown" (never the path: a scan
   * would make a series per path it tries).
   */
  unrouted(): { done(protocol: Protocol, code: string, startMs: number): void } {
    const byProtocol = new Map<Protocol, Series>();
    return {
      done: (protocol, code, startMs) => {
        let series = byProtocol.get(protocol);
        if (!series) {
          series = this.#series("unknown", protocol);
          byProtocol.set(protocol, series);
        }
        this.observe(series, code, startMs);
      },
    };
  }

  /**
   * Observes one RPC method on one protocol for a path that serves it without connect-node (the gRPC fast
   * path), under the same series the interceptor counts it in.
   */
  rpc(method: DescMethod, protocol: Protocol): { done(code: string, startMs: number): void } {
    const series = this.#rpc(method, protocol);
    return { done: (code, startMs) => this.observe(series, code, startMs) };
  }

  /** Counts one answered request and its latency; `startMs` is from `performance.now()`. */
  private observe(series: Series, code: string, startMs: number): void {
    series.latency.observe((performance.now() - startMs) / 1000);
    let c = series.byCode.get(code);
    if (!c) {
      c = series.counter.labels(series.procedure, series.protocol, code);
      series.byCode.set(code, c);
    }
    c.inc();
  }

  /**
   * Observes every RPC that reaches its implementation. What connect-node refuses before that (a message that
   * does not decode, an unknown encoding, a wrong content type, a bad timeout) is counted by `countRefusals`.
   */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      const start = performance.now();
      req.contextValues.set(observedKey, true);
      const series = this.#rpc(req.method, rpcProtocolOf(req.header.get("content-type")));
      try {
        const res = await next(req);
        if (!res.stream) {
          this.observe(series, "ok", start);
          return res;
        }
        return { ...res, message: this.#observeStream(res.message, series, start) };
      } catch (err) {
        this.observe(series, codeNames[ConnectError.from(err).code] ?? "unknown", start);
        throw err;
      }
    };
  }

  /**
   * Counts, under the RPC's path, the requests connect-node answered without running the interceptor: refused
   * while reading the request. Call it after the last service is registered.
   */
  countRefusals(router: ConnectRouter): void {
    const handlers = router.handlers;
    for (let i = 0; i < handlers.length; i++) {
      const handler = handlers[i];
      if (handler) handlers[i] = this.#countingRefusals(handler);
    }
  }

  #countingRefusals(handler: UniversalHandler): UniversalHandler {
    const serve = async (req: UniversalServerRequest) => {
      const start = performance.now();
      const res = await handler(req);
      if (req.contextValues?.get(observedKey)) return res;
      const series = this.#rpc(handler.method, rpcProtocolOf(req.header.get("content-type")));
      return watchAnswer(res, (code) => this.observe(series, code, start));
    };
    return Object.assign(serve, handler);
  }

  codeSent(): void {
    this.#codesSent.inc();
  }
  codeVerified(): void {
    this.#codesVerified.inc();
  }
  codeFailed(reason: CodeFailure): void {
    this.#codesFailed.labels(reason).inc();
  }
  codeExpired(): void {
    this.#codesExpired.inc();
  }
  smsSend(provider: string, outcome: SmsOutcome): void {
    this.#smsSends.labels(provider, outcome).inc();
  }
  limitRefused(limit: string): void {
    this.#limitRefusals.labels(limit).inc();
  }
  deliveryReported(provider: string, country: string, status: string): void {
    this.#deliveryReceipts.labels(provider, country, status).inc();
  }

  async *#observeStream<T>(messages: AsyncIterable<T>, series: Series, start: number): AsyncIterable<T> {
    let code = "ok";
    try {
      yield* messages;
    } catch (err) {
      code = codeNames[ConnectError.from(err).code] ?? "unknown";
      throw err;
    } finally {
      this.observe(series, code, start);
    }
  }

  #rpc(method: DescMethod, protocol: Protocol): Series {
    let byProtocol = this.#rpcSeries.get(method);
    if (!byProtocol) {
      byProtocol = new Map();
      this.#rpcSeries.set(method, byProtocol);
    }
    let series = byProtocol.get(protocol);
    if (!series) {
      series = this.#series(`/${method.parent.typeName}/${method.name}`, protocol);
      byProtocol.set(protocol, series);
    }
    return series;
  }

  #series(procedure: string, protocol: Protocol): Series {
    return {
      latency: this.#latency.labels(procedure, protocol),
      byCode: new Map(),
      counter: this.#requests,
      procedure,
      protocol,
    };
  }
}

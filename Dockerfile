# syntax=docker/dockerfile:1
# Build: compile TypeScript with every dependency. Runtime: production dependencies, dist/ and openapi.yaml,
# as a non-root user. test/runtime-image.test.ts reproduces the runtime stage without a container engine.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY gen gen
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# A heap limit V8 sizes its collections by: without one, on a host with memory to spare V8 lets the old generation
# grow to ~4 GB before it collects, and a busy process sat at 200-230 MB RSS where ~30 MB is live. 320 MB leaves
# room under the 512Mi limit of deploy/kubernetes (change both together); `npm run bench` runs with this value.
# --max-semi-space-size=8: the young generation at most 8 MB a half instead of 16. Measured in `npm run bench`:
# peak RSS under load 130-168 -> 117-140 MB, the longest GC pause at half of peak 10-23 -> 6-11 ms, for ~5 % more
# CPU at peak in interleaved pairs (within the noise at a fixed rate).
ENV NODE_OPTIONS="--max-old-space-size=320 --max-semi-space-size=8"
# glibc gives threads that allocate at once arenas of their own, up to 8 per core, and keeps what each has touched,
# so native memory freed in one is not reused by another (V8 compiles optimised code on its platform threads,
# libuv's pool writes the log lines). Two arenas: peak RSS under load 3-12 MB lower on every service row of
# `npm run bench`, the busiest 142-152 -> 137-142 MB in one round, CPU per call within 4 % (README Performance).
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist dist
COPY openapi.yaml ./
USER node
EXPOSE 8000
# Node has fetch; no curl in the slim image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# main.ts drains in-flight requests on SIGTERM for SHUTDOWN_TIMEOUT_MS; node runs as PID 1 without a shell.
STOPSIGNAL SIGTERM
# --single-threaded-gc: V8 otherwise marks and scavenges on helper threads sized by the host's cores, which on a
# replica given about one core take turns with the thread serving requests; measured on one core at 1 100
# SendOtp/s, the service's p99 went from 16-26 ms to 4-15 ms at the same throughput. (Refused in NODE_OPTIONS.)
# `npm run bench` runs with these flags, NODE_OPTIONS and MALLOC_ARENA_MAX above.
CMD ["node", "--enable-source-maps", "--single-threaded-gc", "dist/src/main.js"]

import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";

/** REDIS_URL; absent in development, where the embedded in-memory store is used instead. */
export function readRedisUrl(r: EnvReader): string | undefined {
  if (r.production) {
    r.require(
      "REDIS_URL",
      `${IN_PRODUCTION} (the in-memory store loses codes, users and sessions on restart)`,
    );
  }
  const url = r.optional("REDIS_URL");
  if (url !== undefined && !/^rediss?:\/\//.test(url)) {
    r.problems.push(`REDIS_URL must start with redis:// or rediss://, got "${url}"`);
  }
  return url;
}

'use strict';
// The reporter: per-second aggregates and every transition to a fusebox server, and the config
// long poll, for any breaker library bound through a binding (see opossum.js).
//
// It follows the Rust reporter (breaker/src/reporter.rs) and subscriber: batches are numbered
// when first sent and retried with the same number and content until acknowledged, with
// exponential backoff (or the server's Retry-After); memory is bounded by `maxBuffered` items
// (aggregates coalesced per breaker first, then dropped, transitions dropped last, every loss
// counted in the next batch's `dropped`). Calls never wait for it: a call only adds to counters,
// a transition is queued and sent from a later turn of the event loop. Its timers and sockets
// are unref'd, so it never keeps a process alive, except while `close()` flushes.

const http = require('node:http');
const https = require('node:https');

/** The fixed latency bucket upper bounds (ms) of docs/protocol.md; one more unbounded bucket. */
const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];
const N_BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** The bucket a latency in ms falls in (a bound is inclusive, as in the server). */
function bucketOf (ms) {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) {
    if (ms <= LATENCY_BOUNDS_MS[i]) return i;
  }
  return LATENCY_BOUNDS_MS.length;
}

/** One interval's counts of one breaker, filled by the call path. */
class Counts {
  constructor () {
    this.success = 0;
    this.failure = 0;
    this.timeout = 0;
    this.rejected = 0;
    this.slow = 0;
    this.ignored = 0;
    this.latency = new Array(N_BUCKETS).fill(0);
  }

  /** A call that ran and was judged, with its latency in ms. */
  ran (outcome, ms, slowMs) {
    this[outcome]++;
    this.latency[bucketOf(ms)]++;
    if (ms >= slowMs) this.slow++;
  }
}

// The same warning at most once in this many ms (a server down for an hour says so once a minute).
const WARNING_EVERY_MS = 60000;

const DEFAULTS = {
  intervalMs: 1000,
  maxBuffered: 10000,
  maxBatchItems: 2000,
  requestTimeoutMs: 10000,
  minBackoffMs: 100,
  maxBackoffMs: 30000,
  shutdownTimeoutMs: 5000,
  pollTimeoutMs: 30000,
  // How soon to ask again for a breaker the server holds no config for.
  noConfigRetryMs: 5000
};

class Reporter {
  /**
   * @param {object} options `url` (the server's base URL), `key` (the service's ingest key),
   *   `service`, `instance`; optional: `intervalMs`, `maxBuffered`, `maxBatchItems`,
   *   `requestTimeoutMs`, `minBackoffMs`, `maxBackoffMs`, `shutdownTimeoutMs`, `pollTimeoutMs`,
   *   `noConfigRetryMs`, `followConfigs` (default true), `onWarning(message)`.
   */
  constructor (options) {
    for (const field of ['url', 'service', 'instance']) {
      if (typeof options?.[field] !== 'string' || options[field] === '') {
        throw new TypeError(`fusebox: options.${field} must be a non-empty string`);
      }
    }
    this.options = { ...DEFAULTS, followConfigs: true, ...options };
    const base = new URL(this.options.url);
    this.base = base.href.replace(/\/+$/, '');
    this.transport = base.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true });
    this.bindings = new Map();
    this.pendingAggregates = [];
    this.pendingTransitions = [];
    this.pendingDrops = zeroDrops();
    this.inFlight = null;
    this.sending = false;
    this.retryTimer = null;
    this.backoffMs = this.options.minBackoffMs;
    // Starting from the wall clock keeps numbers increasing across restarts of an instance.
    this.nextSeq = Date.now();
    this.intervalStartMs = Date.now();
    this.closed = false;
    this.stats = { batchesAcked: 0, failedAttempts: 0, drops: zeroDrops() };
    this.warnedAtMs = new Map();
    this.ticker = setInterval(() => this.collect(), Math.max(1, this.options.intervalMs));
    this.ticker.unref();
  }

  /** Reports `binding` (an object with the binding interface of opossum.js) from now on. */
  add (binding) {
    if (this.closed) throw new Error('fusebox: the reporter is closed');
    if (this.bindings.has(binding.name)) {
      throw new Error(`fusebox: a breaker named ${JSON.stringify(binding.name)} is already reported`);
    }
    this.bindings.set(binding.name, binding);
    if (this.options.followConfigs) {
      // follow() catches what each poll throws; this is for anything that escapes it.
      this.follow(binding).catch(error => this.warn(`stopped following the config of ${binding.name}: ${error}`));
    }
  }

  /** Stops reporting `binding`. */
  remove (binding) {
    if (this.bindings.get(binding.name) === binding) this.bindings.delete(binding.name);
  }

  /** What the reporter has done so far, and what it holds. */
  snapshot () {
    const inFlight = this.inFlight ? this.inFlight.aggregates.length + this.inFlight.transitions.length : 0;
    return {
      batchesAcked: this.stats.batchesAcked,
      failedAttempts: this.stats.failedAttempts,
      pendingItems: this.pendingAggregates.length + this.pendingTransitions.length + inFlight,
      drops: { ...this.stats.drops }
    };
  }

  /** Queues a transition of `binding` and sends it at once (from a later turn). */
  transition (binding, from, to, trigger) {
    if (from === to) return;
    this.pendingTransitions.push({
      breaker: binding.name,
      at_ms: Date.now(),
      from,
      to,
      trigger,
      config_version: binding.configVersion
    });
    this.enforceCap();
    if (!this.closed) setImmediate(() => this.pump()).unref();
  }

  /** Adds one aggregate per breaker for the interval that ends now. */
  collect () {
    const nowMs = Date.now();
    const startMs = this.intervalStartMs;
    const intervalMs = Math.max(1, nowMs - startMs);
    for (const binding of this.bindings.values()) {
      // A timer's callback that throws ends the process; one breaker that cannot be read
      // must not take the others, or the service, with it.
      try {
        this.collectOne(binding, startMs, intervalMs);
      } catch (error) {
        this.warn(`could not read breaker ${binding.name}: ${error}`, `collect-${binding.name}`);
      }
    }
    this.intervalStartMs = nowMs;
    this.enforceCap();
    this.pump();
  }

  /** Adds the aggregate of `binding` for the interval that starts at `startMs`. */
  collectOne (binding, startMs, intervalMs) {
    const counts = binding.takeCounts();
    const rate = binding.failureRate();
    this.pendingAggregates.push({
      breaker: binding.name,
      start_ms: startMs,
      interval_ms: intervalMs,
      counts: {
        success: counts.success,
        failure: counts.failure,
        timeout: counts.timeout,
        rejected: counts.rejected,
        slow: counts.slow,
        ignored: counts.ignored
      },
      latency: { counts: counts.latency },
      state: binding.state,
      failure_rate: rate.value,
      failure_rate_threshold: rate.threshold,
      config_version: binding.configVersion
    });
  }

  /** Keeps pending items within `maxBuffered`, as the Rust reporter does. */
  enforceCap () {
    const cap = Math.max(1, this.options.maxBuffered);
    if (this.pendingAggregates.length + this.pendingTransitions.length <= cap) return;
    const byBreaker = new Map();
    const before = this.pendingAggregates.length;
    for (const aggregate of this.pendingAggregates) {
      const earlier = byBreaker.get(aggregate.breaker);
      if (earlier) mergeAggregate(earlier, aggregate);
      else byBreaker.set(aggregate.breaker, aggregate);
    }
    const drops = zeroDrops();
    drops.aggregates_coalesced = before - byBreaker.size;
    this.pendingAggregates = [...byBreaker.values()];
    while (this.pendingAggregates.length + this.pendingTransitions.length > cap && this.pendingAggregates.length > 0) {
      this.pendingAggregates.shift();
      drops.aggregates_dropped++;
    }
    while (this.pendingTransitions.length > cap) {
      this.pendingTransitions.shift();
      drops.transitions_dropped++;
    }
    if (drops.transitions_dropped > 0) {
      this.warn(`buffer full of transitions; dropped the ${drops.transitions_dropped} oldest`);
    }
    addDrops(this.pendingDrops, drops);
    addDrops(this.stats.drops, drops);
  }

  /** Makes a batch of what is pending unless one is in flight; false when nothing is. */
  readyBatch () {
    if (this.inFlight) return true;
    const drops = this.pendingDrops;
    if (this.pendingAggregates.length === 0 && this.pendingTransitions.length === 0 &&
        drops.aggregates_coalesced === 0 && drops.aggregates_dropped === 0 && drops.transitions_dropped === 0) {
      return false;
    }
    const maxItems = Math.max(1, this.options.maxBatchItems);
    const transitions = this.pendingTransitions.splice(0, maxItems);
    const aggregates = this.pendingAggregates.splice(0, maxItems - transitions.length);
    this.inFlight = {
      service: this.options.service,
      instance: this.options.instance,
      seq: this.nextSeq++,
      sent_at_ms: Date.now(),
      aggregates,
      transitions,
      dropped: drops
    };
    this.pendingDrops = zeroDrops();
    return true;
  }

  /** Sends batches one after another until nothing is pending or a send fails. */
  pump () {
    if (this.sending || this.retryTimer) return;
    if (!this.readyBatch()) return;
    this.sending = true;
    this.sendInFlight().then(ok => ok, error => {
      // sendInFlight should not throw; should it, the batch is retried like a failed attempt
      // instead of the reporter stopping for good with `sending` left set.
      this.warn(`reporting failed unexpectedly (${error}); retrying`, 'unexpected');
      return false;
    }).then(ok => {
      this.sending = false;
      if (ok) {
        this.pump();
      } else if (!this.closed) {
        const waitMs = this.nextBackoff();
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.pump();
        }, waitMs);
        this.retryTimer.unref();
      }
    }).catch(error => {
      this.sending = false;
      this.warn(`reporting failed unexpectedly (${error})`, 'unexpected');
    });
  }

  /** Sends the batch in flight once: true when it is done with (acknowledged or refused for good). */
  async sendInFlight () {
    const batch = this.inFlight;
    // With more to send, the server may answer before the commit (202 once it has journaled
    // the batch), so the next batch is on its way while this one commits.
    const more = this.pendingAggregates.length + this.pendingTransitions.length > 0;
    const extra = more ? { prefer: 'respond-async' } : undefined;
    const answer = await this.request('POST', '/api/v1/ingest', batch, this.options.requestTimeoutMs, extra);
    if (answer.status === 200 || answer.status === 202) {
      let ack = null;
      try { ack = JSON.parse(answer.body); } catch (_) {}
      if (ack && ack.seq === batch.seq) {
        this.inFlight = null;
        this.backoffMs = this.options.minBackoffMs;
        this.retryAfterMs = 0;
        this.stats.batchesAcked++;
        return true;
      }
    } else if (answer.status >= 400 && answer.status < 500 && ![401, 403, 404, 408, 425, 429].includes(answer.status)) {
      // The batch itself is wrong and will never be taken.
      this.warn(`server refused batch ${batch.seq} (${answer.status}: ${answer.body.slice(0, 300)}); dropping it`);
      const drops = zeroDrops();
      drops.aggregates_dropped = batch.aggregates.length;
      drops.transitions_dropped = batch.transitions.length;
      addDrops(this.pendingDrops, drops);
      addDrops(this.stats.drops, drops);
      this.inFlight = null;
      return true;
    }
    if (this.stats.failedAttempts++ === 0) {
      this.warn(`reporting failed (${answer.status || answer.error}); retrying`);
    }
    this.retryAfterMs = answer.retryAfterMs;
    return false;
  }

  nextBackoff () {
    const waitMs = Math.max(this.backoffMs, this.retryAfterMs || 0);
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs);
    return waitMs;
  }

  /**
   * One HTTP request with the ingest key; resolves (never rejects) with `{status, body,
   * retryAfterMs}`, status 0 and `error` when there was no answer. The socket is unref'd.
   */
  request (method, path, body, timeoutMs, extraHeaders) {
    return new Promise(resolve => {
      const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
      const headers = { accept: 'application/json', ...extraHeaders };
      if (payload) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = payload.length;
      }
      if (this.options.key) headers.authorization = `Bearer ${this.options.key}`;
      let done = false;
      const finish = answer => {
        if (!done) {
          done = true;
          resolve(answer);
        }
      };
      let request;
      try {
        // Throws at once for what Node will not send: a key with a newline (ERR_INVALID_CHAR),
        // a path it cannot encode.
        request = this.transport.request(this.base + path, { method, headers, agent: this.agent, timeout: timeoutMs }, response => {
        const chunks = [];
        response.on('data', chunk => chunks.push(chunk));
        response.on('end', () => finish({
          status: response.statusCode,
          body: Buffer.concat(chunks).toString('utf8'),
          retryAfterMs: retryAfterMs(response.headers['retry-after'])
        }));
        response.on('error', error => finish({ status: 0, error: error.message, body: '' }));
        });
        request.on('socket', socket => { if (!this.flushing) socket.unref(); });
        request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        request.on('error', error => finish({ status: 0, error: error.message, body: '' }));
        request.end(payload);
      } catch (error) {
        if (request) request.destroy();
        finish({ status: 0, error: error.message, body: '' });
      }
    });
  }

  /** Long-polls one breaker's config for as long as it is reported. */
  async follow (binding) {
    await this.reportStatus(binding);
    let backoffMs = this.options.minBackoffMs;
    while (!this.closed && this.bindings.get(binding.name) === binding) {
      try {
        backoffMs = await this.followOnce(binding, backoffMs);
      } catch (error) {
        // A config the binding choked on, a listener of the breaker that threw: the breaker
        // keeps following, or it would never see another push.
        this.warn(`following the config of ${binding.name} failed (${error}); carrying on`, `config-${binding.name}`);
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.options.maxBackoffMs);
      }
    }
  }

  /** One long poll of `binding`'s config and what follows from its answer; resolves with the next backoff. */
  async followOnce (binding, backoffMs) {
    const query = new URLSearchParams({
      wait_for_version_above: String(binding.knownVersion),
      timeout_ms: String(this.options.pollTimeoutMs),
      instance: this.options.instance
    });
    const path = `/api/v1/config/${encodeURIComponent(this.options.service)}/${encodeURIComponent(binding.name)}?${query}`;
    const answer = await this.request('GET', path, undefined, this.options.pollTimeoutMs + 10000);
    if (this.closed) return backoffMs;
    if (answer.status === 200) {
      let config = null;
      try { config = JSON.parse(answer.body); } catch (_) {}
      if (!config || !(config.version > binding.knownVersion)) {
        await sleep(this.options.minBackoffMs);
        return this.options.minBackoffMs;
      }
      // Known only once applied (or refused): a config that threw is asked for again.
      const refusal = binding.applyConfig(config);
      binding.knownVersion = config.version;
      binding.refused = refusal ? { version: config.version, ...refusal } : null;
      await this.reportStatus(binding);
      return this.options.minBackoffMs;
    }
    if (answer.status === 204) return this.options.minBackoffMs;
    if (answer.status === 404) {
      await sleep(this.options.noConfigRetryMs);
      return backoffMs;
    }
    await sleep(Math.max(backoffMs, answer.retryAfterMs || 0));
    return Math.min(backoffMs * 2, this.options.maxBackoffMs);
  }

  /** Tells the server which version `binding` runs and why it refused the last push (best effort). */
  async reportStatus (binding) {
    await this.request('POST', '/api/v1/config-status', {
      service: this.options.service,
      instance: this.options.instance,
      at_ms: Date.now(),
      breakers: [{
        breaker: binding.name,
        running_version: binding.configVersion,
        refused: binding.refused || null
      }]
    }, 5000);
  }

  /**
   * Sends a last aggregate and everything pending, for at most `shutdownTimeoutMs`, and stops.
   * Resolves with the reporter's snapshot.
   */
  async close () {
    if (this.closed) return this.snapshot();
    this.collect();
    this.closed = true;
    this.flushing = true;
    clearInterval(this.ticker);
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const deadline = Date.now() + this.options.shutdownTimeoutMs;
    // A ref'd timer keeps the process alive while the flush runs.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      while (this.sending && Date.now() < deadline) await sleep(5);
      while (this.readyBatch() && Date.now() < deadline) {
        if (!(await this.sendInFlight())) {
          await sleep(Math.min(this.nextBackoff(), Math.max(0, deadline - Date.now())));
        }
      }
    } finally {
      clearInterval(keepAlive);
      this.flushing = false;
      this.agent.destroy();
    }
    const left = this.snapshot();
    if (left.pendingItems > 0) this.warn(`stopped with ${left.pendingItems} items not acknowledged`);
    return left;
  }

  /**
   * Says `message` through `onWarning` (or a process warning); with `what`, at most once a
   * minute for the same `what`. A throwing `onWarning` is ignored: reporting goes on.
   */
  warn (message, what) {
    if (what !== undefined) {
      const nowMs = Date.now();
      const lastMs = this.warnedAtMs.get(what);
      if (lastMs !== undefined && nowMs - lastMs < WARNING_EVERY_MS) return;
      this.warnedAtMs.set(what, nowMs);
    }
    try {
      if (this.options.onWarning) this.options.onWarning(message);
      else process.emitWarning(`fusebox: ${message}`);
    } catch (_) {}
  }
}

function zeroDrops () {
  return { aggregates_coalesced: 0, aggregates_dropped: 0, transitions_dropped: 0 };
}

function addDrops (into, add) {
  into.aggregates_coalesced += add.aggregates_coalesced;
  into.aggregates_dropped += add.aggregates_dropped;
  into.transitions_dropped += add.transitions_dropped;
}

function mergeAggregate (earlier, later) {
  const endMs = later.start_ms + later.interval_ms;
  earlier.start_ms = Math.min(earlier.start_ms, later.start_ms);
  earlier.interval_ms = endMs - earlier.start_ms;
  for (const outcome of Object.keys(earlier.counts)) earlier.counts[outcome] += later.counts[outcome];
  for (let i = 0; i < N_BUCKETS; i++) earlier.latency.counts[i] += later.latency.counts[i];
  earlier.state = later.state;
  earlier.failure_rate = later.failure_rate;
  earlier.failure_rate_threshold = later.failure_rate_threshold;
  earlier.config_version = later.config_version;
}

/** `Retry-After` in ms (seconds or an HTTP date), 0 when absent or unreadable. */
function retryAfterMs (header) {
  if (!header) return 0;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : 0;
}

function sleep (ms) {
  return new Promise(resolve => setTimeout(resolve, ms).unref());
}

module.exports = { Reporter, Counts, LATENCY_BOUNDS_MS, bucketOf };

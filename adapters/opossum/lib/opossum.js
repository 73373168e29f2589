'use strict';
// The binding of one opossum CircuitBreaker: counts its calls from its events, reports its
// transitions with their trigger, and applies pushed configs to it (docs/adapters.md has the
// mapping table).
//
// opossum emits, per call: `success` (result, latency ms), `failure` (error, latency ms), and for
// a call that timed out `timeout` (error, latency ms) right before its `failure` (or `success`
// when the error filter excuses it); `reject` for a call refused while Open. `fail()` emits
// `failure` and then, synchronously, `open` when the call trips the breaker. State changes are
// `open`, `halfOpen` (the reset timer fired) and `close`. Our listeners only add to counters.

const { Counts } = require('./reporter');

// setTimeout's longest delay (about 24.8 days): a forced-open breaker's reset timer waits this
// long, and the binding opens it again should it ever fire.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** opossum's state as fusebox names it. */
function stateOf (breaker) {
  if (breaker.opened) return 'open';
  if (breaker.halfOpen) return 'half_open';
  return 'closed';
}

class OpossumBinding {
  constructor (breaker, reporter, name) {
    this.breaker = breaker;
    this.reporter = reporter;
    this.name = name || breaker.name;
    this.counts = new Counts();
    this.state = stateOf(breaker);
    this.configVersion = 0;
    this.knownVersion = 0;
    this.refused = null;
    this.mode = 'automatic';
    this.slowMs = 60000;
    this.exponentialWait = null;
    this.savedResetTimeout = breaker.options.resetTimeout;
    this.opensInARow = 0;
    // True between a call's `failure` and the end of that turn: an `open` then is the trip.
    this.failing = false;
    this.afterTimeout = false;
    this.openedAtMs = Date.now();
    const counts = () => this.counts;
    this.listeners = {
      success: (_result, latencyMs) => {
        if (this.afterTimeout) {
          this.afterTimeout = false;
          return;
        }
        counts().ran('success', latencyMs, this.slowMs);
      },
      failure: (_error, latencyMs) => {
        this.failing = true;
        queueMicrotask(() => { this.failing = false; });
        if (this.afterTimeout) {
          this.afterTimeout = false;
          return;
        }
        counts().ran('failure', latencyMs, this.slowMs);
      },
      timeout: (_error, latencyMs) => {
        this.afterTimeout = true;
        counts().ran('timeout', latencyMs, this.slowMs);
      },
      reject: () => { counts().rejected++; },
      // Only while disabled: opossum then runs the action with no event but `fire`.
      fire: () => { if (!breaker.enabled) counts().ignored++; },
      open: () => this.onOpen(),
      halfOpen: () => this.onHalfOpen(),
      close: () => this.onClose(),
      shutdown: () => this.reporter.remove(this)
    };
    for (const event of ['success', 'failure', 'timeout', 'reject', 'halfOpen', 'close', 'shutdown']) {
      breaker.on(event, this.listeners[event]);
    }
    // Before opossum's own `open` listener, which reads `resetTimeout` to start the reset timer.
    breaker.prependListener('open', this.listeners.open);
  }

  detach () {
    this.changingMode = true;
    this.leaveMode();
    this.changingMode = false;
    for (const [event, listener] of Object.entries(this.listeners)) this.breaker.removeListener(event, listener);
  }

  /** The counts since the last call, and fresh ones for the next interval. */
  takeCounts () {
    const counts = this.counts;
    this.counts = new Counts();
    return counts;
  }

  /** The error rate opossum judges over its rolling window (failures / fires), and its threshold. */
  failureRate () {
    let failures = 0;
    let fires = 0;
    for (const bucket of this.breaker.status.window) {
      if (!bucket) continue;
      failures += bucket.failures;
      fires += bucket.fires;
    }
    return {
      value: fires > 0 ? Math.min(1, failures / fires) : null,
      threshold: Math.min(1, this.breaker.options.errorThresholdPercentage / 100)
    };
  }

  onOpen () {
    const options = this.breaker.options;
    if (this.holdingOpen) {
      // Forced open: the reset timer fired and the binding opened it again at once.
      options.resetTimeout = MAX_TIMER_MS;
      return;
    }
    const from = this.state;
    this.state = 'open';
    this.openedAtMs = Date.now();
    let trigger = { kind: 'manual', value: 0, threshold: 0 };
    if (this.failing && !this.changingMode) {
      if (from === 'half_open') {
        trigger = { kind: 'probe_failed', value: 1, threshold: 1 };
      } else {
        trigger = { kind: 'failure_rate', value: this.failureRate().value ?? 0, threshold: options.errorThresholdPercentage / 100 };
      }
    }
    this.failing = false;
    this.opensInARow = from === 'half_open' ? this.opensInARow + 1 : 1;
    if (this.mode === 'forced_open') {
      options.resetTimeout = MAX_TIMER_MS;
    } else if (this.exponentialWait) {
      options.resetTimeout = exponentialWaitMs(this.exponentialWait, this.opensInARow);
    }
    this.reporter.transition(this, from, 'open', trigger);
  }

  onHalfOpen () {
    if (this.mode === 'forced_open') {
      // Not a state a forced-open breaker reports: it is opened again in the same turn.
      this.holdingOpen = true;
      this.breaker.open();
      this.holdingOpen = false;
      return;
    }
    const from = this.state;
    this.state = 'half_open';
    const waitedS = (Date.now() - this.openedAtMs) / 1000;
    this.reporter.transition(this, from, 'half_open', {
      kind: 'wait_elapsed', value: waitedS, threshold: this.breaker.options.resetTimeout / 1000
    });
  }

  onClose () {
    const from = this.state;
    this.state = 'closed';
    this.opensInARow = 0;
    const trigger = from === 'half_open' && !this.changingMode
      ? { kind: 'probe_succeeded', value: 1, threshold: 1 }
      : { kind: 'manual', value: 0, threshold: 0 };
    this.reporter.transition(this, from, 'closed', trigger);
  }

  /**
   * Applies a pushed config (protocol.md's BreakerConfig) when opossum can run it live;
   * otherwise returns `{field, rule}` and changes nothing.
   */
  applyConfig (config) {
    const refusal = refuse(config, this.breaker);
    if (refusal) return refusal;
    const options = this.breaker.options;
    options.errorThresholdPercentage = config.failure_rate_threshold == null ? 100 : config.failure_rate_threshold * 100;
    options.timeout = config.call_timeout_ms == null ? false : config.call_timeout_ms;
    this.slowMs = config.slow_call_duration_ms ?? 60000;
    if (config.wait.kind === 'fixed') {
      this.exponentialWait = null;
      this.savedResetTimeout = config.wait.ms;
    } else {
      this.exponentialWait = config.wait;
      this.savedResetTimeout = config.wait.initial_ms;
    }
    if (this.mode !== 'forced_open') options.resetTimeout = this.savedResetTimeout;
    this.configVersion = config.version;
    this.setMode(config.mode || 'automatic');
    return null;
  }

  /**
   * Forced open, disabled, metrics only or automatic, as the Rust breaker's modes: forced open
   * rejects every call and holds Open; disabled lets every call through unjudged (counted as
   * `ignored`, opossum runs them with no outcome event) in Closed; metrics only judges and
   * reports but never rejects. Leaving forced open or disabled closes the breaker.
   */
  setMode (mode) {
    if (mode === this.mode) return;
    const breaker = this.breaker;
    this.changingMode = true;
    try {
      this.leaveMode();
      this.mode = mode;
      if (mode === 'forced_open') {
        // Rejects even in the turn the reset timer fires; that timer waits ~24 days anyway.
        Object.defineProperty(breaker, 'pendingClose', { configurable: true, get: () => false });
        breaker.options.resetTimeout = MAX_TIMER_MS;
        if (this.state !== 'open') breaker.open();
      } else if (mode === 'disabled') {
        if (this.state !== 'closed') breaker.close();
        breaker.disable();
        breaker.on('fire', this.listeners.fire);
      } else if (mode === 'metrics_only') {
        // opossum lets a call through while Open when `pendingClose` is true.
        Object.defineProperty(breaker, 'pendingClose', { configurable: true, get: () => true });
      }
    } finally {
      this.changingMode = false;
    }
  }

  leaveMode () {
    const breaker = this.breaker;
    const previous = this.mode;
    this.mode = 'automatic';
    if (previous === 'forced_open' || previous === 'metrics_only') delete breaker.pendingClose;
    if (previous === 'forced_open') {
      breaker.options.resetTimeout = this.savedResetTimeout ?? breaker.options.resetTimeout;
      breaker.close();
    } else if (previous === 'disabled') {
      breaker.removeListener('fire', this.listeners.fire);
      breaker.enable();
    }
  }
}

/** The first field of `config` opossum cannot run live, with the rule, or null. */
function refuse (config, breaker) {
  const options = breaker.options;
  const windowSeconds = options.rollingCountTimeout / 1000;
  if (config.slow_call_rate_threshold != null) {
    return { field: 'slow_call_rate_threshold', rule: 'opossum has no slow-call rule; it must be null' };
  }
  if (config.consecutive_failures != null) {
    return { field: 'consecutive_failures', rule: 'opossum has no consecutive-failures rule; it must be null' };
  }
  if (config.window?.kind !== 'time' || config.window.seconds !== windowSeconds) {
    return {
      field: 'window',
      rule: `opossum's rolling window (rollingCountTimeout) is fixed when the breaker is made; this one is {"kind": "time", "seconds": ${windowSeconds}}`
    };
  }
  // A volumeThreshold of 0 judges from the first call, as 1 does (the call itself counts).
  const minimumCalls = Math.max(1, breaker.volumeThreshold);
  if (config.minimum_calls !== minimumCalls) {
    return {
      field: 'minimum_calls',
      rule: `opossum's volumeThreshold is fixed when the breaker is made; this one judges from ${minimumCalls} calls`
    };
  }
  if (config.half_open_probes !== 1) {
    return { field: 'half_open_probes', rule: 'opossum lets one probe through while Half-Open; it must be 1' };
  }
  if (config.half_open_successes !== 1) {
    return { field: 'half_open_successes', rule: 'opossum closes on its first good probe; it must be 1' };
  }
  if (config.half_open_rule === 'rates') {
    return { field: 'half_open_rule', rule: 'opossum judges its one probe by success; it must be "successes"' };
  }
  if (config.half_open_max_wait_ms != null) {
    return { field: 'half_open_max_wait_ms', rule: 'opossum stays Half-Open until a call comes; it must be null' };
  }
  return null;
}

/** `initial × multiplier^(n-1)`, capped, spread by ± jitter: the wait of the n-th Open in a row. */
function exponentialWaitMs (wait, n) {
  const base = Math.min(wait.initial_ms * wait.multiplier ** (n - 1), wait.max_ms);
  const spread = 1 + (wait.jitter || 0) * (2 * Math.random() - 1);
  return Math.max(1, Math.min(MAX_TIMER_MS, Math.round(base * spread)));
}

module.exports = { OpossumBinding, refuse, exponentialWaitMs, stateOf };

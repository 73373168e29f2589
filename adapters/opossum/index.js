'use strict';
// fusebox-opossum: opossum circuit breakers on a fusebox dashboard, following the configs an
// admin pushes there.
//
//   const fusebox = require('fusebox-opossum');
//   const reporter = fusebox.attach([payments, search], {
//     url: 'http://fusebox:7878', key: process.env.FUSEBOX_KEY, service: 'checkout', instance: 'checkout-1'
//   });
//   reporter.add(anotherBreaker);  // breakers made later
//   await reporter.close();        // on shutdown: flushes what is left (also done before a normal exit)

const { Reporter } = require('./lib/reporter');
const { OpossumBinding } = require('./lib/opossum');

/** Reports opossum breakers (bound with `add`) and follows their pushed configs. */
class OpossumReporter extends Reporter {
  constructor (options) {
    super(options);
    this.byBreaker = new Map();
    this.onBeforeExit = () => { this.close().catch(() => {}); };
    process.once('beforeExit', this.onBeforeExit);
  }

  /** Starts reporting `breaker` (its `name` names it; `name` overrides). */
  add (breaker, name) {
    if (this.byBreaker.has(breaker)) return this.byBreaker.get(breaker);
    const binding = new OpossumBinding(breaker, this, name);
    try {
      super.add(binding);
    } catch (error) {
      // Refused (a name already reported, the reporter closed): the breaker keeps no listener.
      binding.detach();
      throw error;
    }
    this.byBreaker.set(breaker, binding);
    return binding;
  }

  /** Stops reporting `breaker` and leaves it as it runs (a forced mode is undone). */
  detach (breaker) {
    const binding = this.byBreaker.get(breaker);
    if (!binding) return;
    this.byBreaker.delete(breaker);
    this.remove(binding);
    binding.detach();
  }

  async close () {
    process.removeListener('beforeExit', this.onBeforeExit);
    return super.close();
  }
}

/**
 * Attaches one breaker or an array of them to a fusebox server. `options`: `url`, `key` (the
 * service's ingest key), `service`, `instance`, and the tuning knobs of `Reporter`.
 */
function attach (breakers, options) {
  const reporter = new OpossumReporter(options);
  for (const breaker of [].concat(breakers ?? [])) reporter.add(breaker);
  return reporter;
}

module.exports = { attach, OpossumReporter };

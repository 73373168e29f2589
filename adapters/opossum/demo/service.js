'use strict';
// A simulated Node.js service with two opossum breakers, attached with fusebox-opossum: what
// `fusebox demo` runs beside its Rust services, and what the browser test shows on the dashboard.
// `ledger` fails for 20 s every 120 s, 30 s after the start, so it opens and recovers; `stripe`
// stays healthy. Configured by FUSEBOX_URL, FUSEBOX_KEY, FUSEBOX_SERVICE, FUSEBOX_INSTANCE; it
// stops, flushing what is left, when its standard input closes.

const CircuitBreaker = require('opossum');
const fusebox = require('..');

const started = Date.now();
const inIncident = () => {
  const s = (Date.now() - started) / 1000 - 30;
  return s >= 0 && s % 120 < 20;
};

function dependency (name, failureP, incident) {
  return new CircuitBreaker(async () => {
    const failing = incident && inIncident();
    await new Promise(resolve => setTimeout(resolve, (failing ? 40 : 4) * (0.5 + Math.random())));
    if (Math.random() < (failing ? 0.7 : failureP)) throw new Error(`${name} failed`);
    return 'ok';
  }, { name, timeout: 1000, resetTimeout: 5000, errorThresholdPercentage: 50, volumeThreshold: 10 });
}

const breakers = [dependency('stripe', 0.01, false), dependency('ledger', 0.02, true)];
const reporter = fusebox.attach(breakers, {
  url: process.env.FUSEBOX_URL || 'http://127.0.0.1:7878',
  key: process.env.FUSEBOX_KEY,
  service: process.env.FUSEBOX_SERVICE || 'node-shop',
  instance: process.env.FUSEBOX_INSTANCE || 'node-1',
  onWarning: () => {}
});
const ticker = setInterval(() => {
  for (const breaker of breakers) breaker.fire().catch(() => {});
}, 50);

process.stdin.resume();
process.stdin.on('end', async () => {
  clearInterval(ticker);
  await reporter.close();
  process.exit(0);
});

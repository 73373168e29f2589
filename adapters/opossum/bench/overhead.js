'use strict';
// Per-call overhead of fusebox-opossum: the same call through a bare opossum breaker and through
// one attached to a reporter, alternating, several rounds; prints each round and the medians.
// Run: node bench/overhead.js [calls per round] [rounds]   (cargo xtask bench --only opossum)
// `node bench/overhead.js memory [minutes]` (`cargo xtask bench --only opossum -- memory 10`)
// instead makes 1,000 calls/s with the server down for that long (10 minutes by default) and
// prints the process's memory and what the reporter holds, once a minute.
// Under `cargo xtask bench` (FUSEBOX_BENCH_SUMMARY names a file) the median added time is also
// appended there as a row of the run's goal/figure summary (the format of xtask/src/bench/row.rs).

const fs = require('fs');
const CircuitBreaker = require('opossum');
const fusebox = require('..');

const MEMORY = process.argv[2] === 'memory';
const CALLS = MEMORY ? 0 : Number(process.argv[2] || 200000);
const ROUNDS = Number(process.argv[3] || 7);
const MINUTES = MEMORY ? Number(process.argv[3] || 10) : 0;

const action = async x => x;
const bare = new CircuitBreaker(action, { name: 'bare' });
const attached = new CircuitBreaker(action, { name: 'attached' });
// The reporter sends to a closed port: its retries run beside the calls, as with a server down.
const reporter = fusebox.attach(attached, {
  url: 'http://127.0.0.1:9', key: 'fbk_bench', service: 'bench', instance: 'bench-1', followConfigs: false, onWarning: () => {}
});

async function nsPerCall (breaker) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) await breaker.fire(i);
  return Number(process.hrtime.bigint() - start) / CALLS;
}

// One row of `cargo xtask bench`'s summary, when it asked for them.
function summaryRow (row) {
  const file = process.env.FUSEBOX_BENCH_SUMMARY;
  if (!file) return;
  const command = row.command || process.env.FUSEBOX_BENCH_COMMAND || '';
  fs.appendFileSync(file, JSON.stringify({ ...row, command }) + '\n');
}

function median (values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function memoryWithServerDown () {
  const mb = bytes => (bytes / 1048576).toFixed(1);
  const report = minute => {
    global.gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    const s = reporter.snapshot();
    console.log(`minute ${minute}: rss ${mb(rss)} MB, heap ${mb(heapUsed)} MB, reporter holds ${s.pendingItems} items, ` +
      `coalesced ${s.drops.aggregates_coalesced}, dropped ${s.drops.aggregates_dropped + s.drops.transitions_dropped}, failed sends ${s.failedAttempts}`);
  };
  report(0);
  let calls = 0;
  const started = Date.now();
  const ticker = setInterval(() => {
    // As many calls as 1,000 a second makes by now, whatever the timer's granularity.
    while (calls < Date.now() - started) attached.fire(calls++).catch(() => {});
  }, 10);
  for (let minute = 1; minute <= Math.ceil(MINUTES); minute++) {
    await new Promise(resolve => setTimeout(resolve, 60000 * Math.min(1, MINUTES - minute + 1)));
    report(Math.min(minute, MINUTES));
  }
  clearInterval(ticker);
  console.log(`${calls} calls in ${MINUTES} min with the server down (opossum ${require('opossum/package.json').version}, node ${process.version})`);
}

(async () => {
  if (MEMORY) {
    await memoryWithServerDown();
    await reporter.close();
    return;
  }
  await nsPerCall(bare);
  await nsPerCall(attached);
  const bareNs = [];
  const attachedNs = [];
  const addedNs = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const b = await nsPerCall(bare);
    const a = await nsPerCall(attached);
    bareNs.push(b);
    attachedNs.push(a);
    addedNs.push(a - b);
    console.log(`round ${round}: bare ${b.toFixed(0)} ns/call, attached ${a.toFixed(0)} ns/call, added ${(a - b).toFixed(0)} ns`);
  }
  console.log(`opossum ${require('opossum/package.json').version}, node ${process.version}, ${CALLS} calls × ${ROUNDS} rounds`);
  console.log(`median: bare ${median(bareNs).toFixed(0)} ns/call, attached ${median(attachedNs).toFixed(0)} ns/call, ` +
    `added ${median(addedNs).toFixed(0)} ns/call (goal ≤ 1000 ns)`);
  const added = median(addedNs);
  summaryRow({
    bench: 'opossum',
    what: `fusebox-opossum: time added per call against bare opossum ${require('opossum/package.json').version} ` +
      `(node ${process.version}, ${CALLS} calls), median of rounds`,
    figure: `${added.toFixed(0)} ns`,
    value: added,
    unit: 'ns',
    goal: '≤ 1000 ns',
    met: added <= 1000,
    spread: `${Math.min(...addedNs).toFixed(0)}–${Math.max(...addedNs).toFixed(0)} ns over ${ROUNDS} rounds`
  });
  await reporter.close();
})();

'use strict';
// FHIR R4 test server: Medplum's FHIR router and in-memory repository behind plain node `http`,
// preloaded with the deterministic synthetic patients of generate.js.
//
//   node server.js --port P [--patients N] [--seed S] [--fault-rate F] [--latency-ms L] [--verbose]
//                  [--profile open|epic|oracle] [--group N] [--bulk-retry-after S] [--shift]
//
// FHIR semantics (matching, sorting, create/read/update/delete, conditional update, batch) come
// from @medplum/fhir-router. The server-*.js modules only fill the gaps of its HTTP layer (see
// README.md); this file reads the command line, preloads the repository and starts the server.

// @medplum/core expects a global WebSocket (Node >= 22 has one). Node 20 does not: define a stub
// before the library loads. Nothing here opens a WebSocket.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocket {
    constructor() {
      throw new Error('WebSocket is not available in the FHIR test server');
    }
  };
}

const { FhirRouter } = require('@medplum/fhir-router');
const { generate } = require('./generate.js');
const { PROFILE_NAMES } = require('./profiles.js');
const { HOST } = require('./server-http.js');
const { loadDefinitions } = require('./server-definitions.js');
const { ValidatingMemoryRepository, preload, createCohort } = require('./server-repository.js');
const { createServer } = require('./server-app.js');

// ---------------------------------------------------------------------------------------------
// Command line

function usage() {
  return (
    'usage: node server.js --port P [--patients N] [--seed S] [--fault-rate F] [--latency-ms L]\n' +
    '                      [--no-validate] [--verbose] [--profile open|epic|oracle] [--group N]\n' +
    '                      [--bulk-retry-after S] [--shift]\n' +
    '  --port P        TCP port on 127.0.0.1 (0 picks a free one; the ready line shows it)\n' +
    '  --patients N    synthetic patients to preload (default 200)\n' +
    '  --seed S        generator seed (default 42)\n' +
    '  --shift         the same patients shifted on purpose (drift tests): 15 years older, more chronic\n' +
    '                  comorbidities, SpO2 3 points lower; nothing else changes\n' +
    '  --fault-rate F  fraction of FHIR requests answered 429 or 503 with Retry-After: 1 (default 0)\n' +
    '  --latency-ms L  delay added to every FHIR request (default 0)\n' +
    '  --no-validate   store written resources without validating them against FHIR R4\n' +
    '  --verbose       log startup timings and requests to stderr\n' +
    '  --profile P     open (default), epic or oracle: answer as that vendor\'s FHIR R4 API does\n' +
    '  --group N       create Group/cohort with the first N preloaded patients\n' +
    '  --bulk-retry-after S  Retry-After of a Bulk Data status poll in progress (default 1)\n'
  );
}

function parseArgs(argv) {
  const opts = { port: undefined, patients: 200, seed: 42, faultRate: 0, latencyMs: 0, verbose: false, validate: true,
    profile: 'open', group: undefined, bulkRetryAfter: 1, shift: false };
  const numeric = {
    '--port': ['port', (v) => Number.isInteger(v) && v >= 0 && v < 65536],
    '--patients': ['patients', (v) => Number.isInteger(v) && v >= 0],
    '--seed': ['seed', (v) => Number.isInteger(v)],
    '--fault-rate': ['faultRate', (v) => Number.isFinite(v) && v >= 0 && v <= 1],
    '--latency-ms': ['latencyMs', (v) => Number.isFinite(v) && v >= 0],
    '--group': ['group', (v) => Number.isInteger(v) && v >= 0],
    '--bulk-retry-after': ['bulkRetryAfter', (v) => Number.isInteger(v) && v >= 0],
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.substring(eq + 1);
      arg = arg.substring(0, eq);
    }
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else if (arg === '--verbose') {
      opts.verbose = true;
    } else if (arg === '--no-validate') {
      opts.validate = false;
    } else if (arg === '--shift') {
      opts.shift = true;
    } else if (arg === '--tls-cert' || arg === '--tls-key' || arg === '--tls-client-ca') {
      // HTTPS with this certificate and key; with a client CA, mutual TLS (clients must present
      // a certificate that CA signed).
      if (value === undefined) {
        value = argv[++i];
      }
      if (!value) throw new Error(`${arg} needs a file`);
      opts[{ '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--tls-client-ca': 'tlsClientCa' }[arg]] = value;
    } else if (arg === '--profile') {
      if (value === undefined) {
        value = argv[++i];
      }
      if (!PROFILE_NAMES.includes(value)) throw new Error(`--profile must be one of ${PROFILE_NAMES.join(', ')}`);
      opts.profile = value;
    } else if (numeric[arg]) {
      if (value === undefined) {
        value = argv[++i];
      }
      const [key, valid] = numeric[arg];
      const n = Number(value);
      if (value === undefined || value === '' || !valid(n)) {
        throw new Error(`invalid value for ${arg}: ${value}`);
      }
      opts[key] = n;
    } else {
      throw new Error(`unknown argument: ${arg}`);
    }
  }
  if (opts.port === undefined) {
    throw new Error('--port is required');
  }
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`server.js: ${err.message}\n${usage()}`);
    process.exit(2);
  }
  const t0 = Date.now();
  const verbose = (msg) => opts.verbose && process.stderr.write(`${msg}\n`);

  loadDefinitions();
  const t1 = Date.now();
  verbose(`definitions loaded in ${t1 - t0} ms`);

  const repo = new ValidatingMemoryRepository();
  const router = new FhirRouter();
  const resources = generate({ patients: opts.patients, seed: opts.seed, shift: opts.shift });
  const counts = await preload(repo, resources);
  if (opts.group !== undefined) {
    counts.GroupMembers = await createCohort(repo, router, opts.group);
  }
  repo.validateWrites = opts.validate;
  const t2 = Date.now();
  verbose(`preloaded ${JSON.stringify(counts)} in ${t2 - t1} ms`);

  const server = createServer(opts, repo, router);
  server.on('error', (err) => {
    process.stderr.write(`server.js: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(opts.port, HOST, () => {
    const baseUrl = server.setBaseUrl(server.address().port);
    verbose(`ready after ${Date.now() - t0} ms`);
    process.stdout.write(`fhir-test-server listening on ${baseUrl} (${opts.patients} patients)\n`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) {
      return;
    }
    stopping = true;
    verbose(`${signal}: stopping`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`server.js: ${err?.stack ?? err}\n`);
  process.exit(1);
});

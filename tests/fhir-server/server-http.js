'use strict';
// HTTP helpers of the FHIR test server (server.js): where it listens and answers, errors as
// OperationOutcomes, JSON answers, request bodies, and a request as profiles.js describes it.

const core = require('@medplum/core');
const { describe } = require('./profiles.js');

const HOST = '127.0.0.1';
const BASE_PATH = '/fhir/R4';
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const FHIR_JSON = 'application/fhir+json';

class HttpError extends Error {
  constructor(status, outcome) {
    super(core.operationOutcomeToString(outcome));
    this.status = status;
    this.outcome = outcome;
  }
}

function outcome(severity, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

const badRequest = (text) => new HttpError(400, outcome('error', 'invalid', text));
const notFound = (text) => new HttpError(404, outcome('error', 'not-found', text));

function send(res, status, body, headers = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': FHIR_JSON,
    'Content-Length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      if (tooLarge) {
        reject(new HttpError(413, outcome('error', 'too-costly', 'Request body too large')));
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

function parseBody(text, contentType, isSearch) {
  if (!text) {
    return undefined;
  }
  if (isSearch && (contentType ?? '').includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`Request body is not valid JSON: ${err.message}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function queryString(entries) {
  return new URLSearchParams(entries).toString();
}

// A request under the FHIR base as profiles.js describes it (undefined elsewhere).
function describeHttp(req, url, rawBody) {
  if (url.pathname !== BASE_PATH && !url.pathname.startsWith(BASE_PATH + '/')) return undefined;
  const path = url.pathname.substring(BASE_PATH.length).replace(/^\/+|\/+$/g, '');
  let body;
  try {
    body = rawBody ? JSON.parse(rawBody) : undefined;
  } catch {
    body = undefined; // a form-encoded search, or malformed JSON that handleFhir refuses
  }
  return describe(req.method, path ? path.split('/') : [], [...url.searchParams], body, req.headers['if-match']);
}

module.exports = {
  HOST,
  BASE_PATH,
  DEFAULT_COUNT,
  MAX_COUNT,
  FHIR_JSON,
  HttpError,
  outcome,
  badRequest,
  notFound,
  send,
  readBody,
  parseBody,
  sleep,
  queryString,
  describeHttp,
};

// Names a client chooses (header names, environment variable names) are stored as own keys: a name
// such as __proto__ is passed on or refused like any other, never dropped or turned into a
// prototype.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setOwn } from "../../src/core/index.js";
import { checkHeaders, lowerHeaders } from "../../src/capabilities/network/request.js";
import { endToEndHeaders } from "../../src/egress/proxy.js";

test("setOwn stores __proto__ as an own key and leaves the prototype alone", () => {
  const o: Record<string, unknown> = {};
  setOwn(o, "__proto__", ["x"]);
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ["__proto__"]);
  assert.equal(JSON.stringify(o), '{"__proto__":["x"]}');
});

test("a request header named __proto__ or constructor reaches the request", () => {
  const out = checkHeaders(JSON.parse('{"__proto__":"a","constructor":"b","x-ok":"c"}'), 16);
  assert.deepEqual(Object.keys(out).sort(), ["__proto__", "constructor", "x-ok"]);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
});

test("response and forwarded headers named __proto__ keep their values and the object its prototype", () => {
  const lower = lowerHeaders(
    JSON.parse('{"__Proto__":"a","__proto__":"b"}') as Record<string, string>,
  );
  assert.equal(Object.getOwnPropertyDescriptor(lower, "__proto__")?.value, "a, b");
  const fwd = endToEndHeaders(["__proto__", "1", "__proto__", "2", "host", "h"]);
  assert.deepEqual(Object.getOwnPropertyDescriptor(fwd, "__proto__")?.value, ["1", "2"]);
  assert.equal(Object.getPrototypeOf(fwd), Object.prototype);
});

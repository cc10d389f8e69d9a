/* In-browser ledger proof check for a trace page.
 *
 * The shopper should not have to trust this server: the page carries each record's exact
 * canonical bytes, its Merkle audit path, the block header and the block's signatures, and
 * this script recomputes everything with WebCrypto (docs/protocol.md section 7):
 *   SHA-256(record_canonical) == leaf.record_hash
 *   leaf hash = SHA-256(0x00 || canonical_json(leaf))
 *   RFC 6962 audit path from the leaf up to header.merkle_root
 *   block_hash = SHA-256(canonical_json(header))
 *   every pinned signer's signature: Ed25519 over canonical_json(header);
 *   blocks at consecutive heights link, one block per height.
 * Anything shown that cannot be proven (record bytes missing, a signature or a proof not
 * there yet) reads "not verified"; while something may still arrive the page looks again.
 * Plain script, no framework; exposes window.TracepayVerify for the known-answer tests.
 */
(function () {
  "use strict";

  var LEAF_PREFIX = 0x00;
  var NODE_PREFIX = 0x01;
  var encoder = new TextEncoder();
  // Not tampering, but not proof either: the page must not read Verified.
  var MISSING_BYTES = "the record's bytes are missing, so the record is not proven";
  var SHOWN_UNPROVEN = "the record shown is not proven (its bytes on the ledger are missing)";
  // Not proven yet, and no sign of tampering either: each organisation's node signs a block
  // once it has validated it, and a fresh sale's block may not be cut yet. The page reads
  // "not verified" and looks again a few times; a signature that is there and wrong, or
  // bytes that do not hash to the proof, still read Tampered.
  var PENDING = ["block is not signed by ", "no proof for the record shown",
                 "no proof for upstream sale "];
  var RECHECKS = 5, RECHECK_MS = 2000;

  function isPending(problem) {
    return PENDING.some(function (prefix) { return problem.indexOf(prefix) === 0; });
  }

  function isUnproven(problem) {
    return problem === MISSING_BYTES || problem === SHOWN_UNPROVEN || isPending(problem);
  }

  function canonicalJson(value) {
    // Same bytes as market_protocol.canonical_json: sorted keys, no whitespace, no floats.
    if (value === null || typeof value === "boolean" || typeof value === "string") {
      return JSON.stringify(value);
    }
    if (typeof value === "number") {
      if (!Number.isInteger(value)) { throw new Error("float in canonical JSON"); }
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) {
      return "[" + value.map(canonicalJson).join(",") + "]";
    }
    var keys = Object.keys(value).sort(function (a, b) {
      return a < b ? -1 : (a > b ? 1 : 0);
    });
    return "{" + keys.map(function (k) {
      return JSON.stringify(k) + ":" + canonicalJson(value[k]);
    }).join(",") + "}";
  }

  function hexToBytes(hex) {
    if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-f]/i.test(hex)) {
      throw new Error("not hex: " + hex);
    }
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(hex.substr(i * 2, 2), 16); }
    return out;
  }

  function bytesToHex(bytes) {
    var view = new Uint8Array(bytes), out = "";
    for (var i = 0; i < view.length; i++) { out += (view[i] < 16 ? "0" : "") + view[i].toString(16); }
    return out;
  }

  function b64uToBytes(text) {
    var b64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function concat(parts) {
    var size = 0, offset = 0;
    parts.forEach(function (p) { size += p.length; });
    var out = new Uint8Array(size);
    parts.forEach(function (p) { out.set(p, offset); offset += p.length; });
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  async function leafHash(data) { return sha256(concat([new Uint8Array([LEAF_PREFIX]), data])); }

  async function nodeHash(left, right) {
    return sha256(concat([new Uint8Array([NODE_PREFIX]), left, right]));
  }

  async function rootFromInclusion(index, size, leaf, path) {
    // RFC 9162 2.1.3.2, the same walk as market_protocol.merkle.root_from_inclusion.
    if (!(Number.isInteger(index) && Number.isInteger(size) && index >= 0 && index < size)) {
      throw new Error("leaf index outside the tree");
    }
    var fn = index, sn = size - 1, result = leaf;
    for (var i = 0; i < path.length; i++) {
      if (sn === 0) { throw new Error("audit path longer than the tree is deep"); }
      var sibling = hexToBytes(path[i]);
      if (sibling.length !== 32) { throw new Error("audit path entry is not 32 bytes"); }
      if ((fn & 1) || fn === sn) {
        result = await nodeHash(sibling, result);
        while (!(fn & 1) && fn !== 0) { fn >>= 1; sn >>= 1; }
      } else {
        result = await nodeHash(result, sibling);
      }
      fn >>= 1; sn >>= 1;
    }
    if (sn !== 0) { throw new Error("audit path shorter than the tree is deep"); }
    return result;
  }

  async function verifySignature(rawKeyB64u, signatureB64u, message) {
    var key = await crypto.subtle.importKey("raw", b64uToBytes(rawKeyB64u), { name: "Ed25519" },
                                            false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, b64uToBytes(signatureB64u), message);
  }

  /* Check one item of the trace API's "proofs" list. Resolves to {ok, problems: [text]}. */
  async function verifyProof(proof, keys) {
    var problems = [];
    try {
      // A record that comes without its bytes (kept only on the nodes of its parties) is
      // not proven, however good the rest: the leaf, path, block and signatures are still
      // checked, but the proof is not ok.
      if (proof.record_canonical !== null && proof.record_canonical !== undefined) {
        var recordHash = bytesToHex(await sha256(encoder.encode(proof.record_canonical)));
        if (recordHash !== proof.leaf.record_hash) {
          problems.push("record does not match its on-chain hash");
        }
      } else {
        problems.push(MISSING_BYTES);
      }
      if (proof.record_hash && proof.record_hash !== proof.leaf.record_hash) {
        problems.push("record_hash differs from the leaf's");
      }
      // Every organisation's node keeps its own copy; the bridge reports the hash of each.
      // One changed copy is tampering even when the copy served here is intact.
      var copies = proof.node_record_hashes || {};
      Object.keys(copies).sort().forEach(function (org) {
        var copyHash = copies[org];
        if (copyHash !== null && copyHash !== undefined && copyHash !== proof.leaf.record_hash) {
          problems.push("the " + org + " node's copy of the record was changed");
        }
      });
      var leaf = await leafHash(encoder.encode(canonicalJson(proof.leaf)));
      if (proof.leaf_hash && proof.leaf_hash !== bytesToHex(leaf)) {
        problems.push("leaf hash does not match the leaf");
      }
      var header = proof.block.header;
      var root = await rootFromInclusion(proof.leaf_index, proof.tree_size, leaf,
                                         proof.audit_path || []);
      if (bytesToHex(root) !== header.merkle_root) {
        problems.push("audit path does not lead to the block's Merkle root");
      }
      if (Number.isInteger(header.count) && header.count !== proof.tree_size) {
        problems.push("tree size differs from the block's leaf count");
      }
      var headerBytes = encoder.encode(canonicalJson(header));
      if (bytesToHex(await sha256(headerBytes)) !== proof.block.block_hash) {
        problems.push("block hash does not match the block header");
      }
      // Every pinned signer (the orderer and each organisation) must have signed: one
      // valid signature among several proves only that one key holder agreed.
      var signatures = proof.block.signatures || [];
      if (!signatures.length) { problems.push("block is not signed"); }
      var bySigner = {};
      for (var i = 0; i < signatures.length; i++) {
        var sig = signatures[i];
        if (!keys[sig.signer]) { problems.push("no pinned key for signer " + sig.signer); continue; }
        bySigner[sig.signer] = sig.sig;
      }
      var pinned = Object.keys(keys).sort();
      for (var j = 0; j < pinned.length; j++) {
        var signer = pinned[j];
        if (bySigner[signer] === undefined) {
          if (signatures.length) { problems.push("block is not signed by " + signer); }
        } else if (!(await verifySignature(keys[signer], bySigner[signer], headerBytes))) {
          problems.push("bad signature by " + signer);
        }
      }
    } catch (err) {
      // A browser without Ed25519 cannot judge the proof: that is not tampering.
      if (err && err.name === "NotSupportedError") { throw err; }
      problems.push("malformed proof: " + err.message);
    }
    return { ok: problems.length === 0, problems: problems };
  }

  /* The proofs must cover what the page shows: the traced record itself (the same bytes as
   * on the ledger, filed under this trace code) and every upstream sale in the timeline. A
   * page showing one record with a valid proof of another must not read Verified. */
  function coverage(data) {
    var problems = [], byId = {};
    (data.proofs || []).forEach(function (p) { if (p && p.leaf) { byId[p.leaf.record_id] = p; } });
    var record = data.record;
    if (record && record.trade_id) {
      var own = byId[record.trade_id];
      if (!own) {
        problems.push("no proof for the record shown");
      } else {
        if (data.trace_code && (own.leaf.trace_keys || []).indexOf(data.trace_code) === -1) {
          problems.push("the trace code is not among the record's on-chain keys");
        }
        if (own.record_canonical !== null && own.record_canonical !== undefined) {
          try {
            if (canonicalJson(JSON.parse(own.record_canonical)) !== canonicalJson(record)) {
              problems.push("the record shown differs from the record on the ledger");
            }
          } catch (err) {
            problems.push("the record on the ledger is not valid JSON");
          }
        } else {
          problems.push(SHOWN_UNPROVEN);
        }
      }
    }
    (data.upstream || []).forEach(function (id) {
      if (!byId[id]) { problems.push("no proof for upstream sale " + id); }
    });
    return problems;
  }

  /* Block links between the blocks the proofs carry: one block per height (two different
   * blocks at a height are a fork), and a block at the height after another links to it. */
  function links(proofs) {
    var problems = [], byHeight = {};
    (proofs || []).forEach(function (p) {
      var block = p && p.block, header = block && block.header;
      if (!header || !Number.isInteger(header.height)) { return; }
      var seen = byHeight[header.height];
      if (seen && seen.block_hash !== block.block_hash) {
        problems.push("two different blocks at height " + header.height + " (a fork)");
      } else if (!seen) {
        byHeight[header.height] = block;
      }
    });
    Object.keys(byHeight).forEach(function (h) {
      var before = byHeight[Number(h) - 1];
      if (before && byHeight[h].header.prev_hash !== before.block_hash) {
        problems.push("block " + h + " does not link to block " + (Number(h) - 1));
      }
    });
    return problems;
  }

  /* The page's verdict from the proof results and the checks across them: "tampered" when
   * anything fails, "unverified" when something shown cannot be proven (record bytes
   * missing, a signature or a proof not there yet), "verified" only when everything shown
   * is proven. ``pending`` says the unproven part may still arrive (look again). */
  function verdict(data, results) {
    var failed = [], unproven = [], pending = false;
    function sort(label, problem) {
      var text = label ? label + ": " + problem : problem;
      pending = pending || isPending(problem);
      (isUnproven(problem) ? unproven : failed).push(text);
    }
    coverage(data).forEach(function (p) { sort("", p); });
    links(data.proofs).forEach(function (p) { sort("", p); });
    results.forEach(function (r, i) {
      r.problems.forEach(function (p) { sort(data.labels && data.labels[i] || "#" + i, p); });
    });
    var state = failed.length ? "tampered" : (unproven.length ? "unverified" : "verified");
    return { state: state, problems: failed.concat(unproven),
             pending: state === "unverified" && pending };
  }

  async function verifyAll(proofs, keys) {
    var results = [];
    for (var i = 0; i < proofs.length; i++) { results.push(await verifyProof(proofs[i], keys)); }
    return results;
  }

  function supported() {
    return typeof crypto !== "undefined" && !!crypto.subtle && typeof TextEncoder !== "undefined";
  }

  function show(state, problems) {
    var box = document.getElementById("verify-status");
    if (!box) { return; }
    box.setAttribute("data-state", state);
    var title = box.getAttribute("data-text-" + state) || state;
    var detail = box.getAttribute("data-detail-" + state) || "";
    box.querySelector(".verify-title").textContent = title;
    box.querySelector(".verify-detail").textContent = detail;
    var list = box.querySelector(".verify-problems");
    list.textContent = "";
    (problems || []).forEach(function (p) {
      var li = document.createElement("li");
      li.textContent = p;
      list.appendChild(li);
    });
  }

  /* The same page again, for its proofs only: a block signed by every node since. */
  async function recheck(attempt) {
    try {
      var answer = await fetch(location.href, { headers: { Accept: "text/html" } });
      var html = new DOMParser().parseFromString(await answer.text(), "text/html");
      var fresh = html.getElementById("proof-data");
      var holder = document.getElementById("proof-data");
      if (fresh && holder) { holder.textContent = fresh.textContent; }
    } catch (err) {
      return;  // offline: the verdict shown stays
    }
    await run(attempt);
  }

  async function run(attempt) {
    attempt = typeof attempt === "number" ? attempt : 0;
    var holder = document.getElementById("proof-data");
    if (!holder) { return; }
    var data = JSON.parse(holder.textContent);
    if (!data.proofs || !data.proofs.length) { show("none"); return; }
    if (!supported()) { show("unavailable"); return; }
    // Only keys pinned by the site (never the ones the bridge publishes) can vouch for a
    // block: without them nothing is checked, and the page says so.
    if (!data.keys) {
      var box = document.getElementById("verify-status");
      show("unavailable", [box && box.getAttribute("data-problem-unpinned") ||
                           "no pinned ledger keys: nothing was checked"]);
      return;
    }
    var results;
    try {
      results = await verifyAll(data.proofs, data.keys || {});
    } catch (err) {
      show("unavailable", [String(err && err.message || err)]);
      return;
    }
    results.forEach(function (r, i) {
      var row = document.querySelector('[data-proof-index="' + i + '"]');
      var onlyUnproven = r.problems.length && r.problems.every(isUnproven);
      if (row) {
        row.setAttribute("data-state", r.ok ? "verified" : (onlyUnproven ? "unverified" : "tampered"));
      }
    });
    var judged = verdict(data, results);
    show(judged.state, judged.problems);
    if (judged.pending && attempt < RECHECKS) {
      setTimeout(function () { recheck(attempt + 1); }, RECHECK_MS);
    }
  }

  window.TracepayVerify = {
    canonicalJson: canonicalJson, rootFromInclusion: rootFromInclusion, verifyProof: verifyProof,
    coverage: coverage, links: links, verdict: verdict, isUnproven: isUnproven,
    verifyAll: verifyAll, hexToBytes: hexToBytes, bytesToHex: bytesToHex, leafHash: leafHash,
    sha256: sha256, run: run
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { run(0); });
  } else {
    run(0);
  }
})();

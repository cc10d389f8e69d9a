/* Service worker: the shopper's receipt and trace stay readable on a flaky market network.
 *
 * Scripts are cache-first (they change only with a release; bump VERSION with them). Pages are network-first with a short timeout, falling back to the copy saved
 * the last time the page loaded, so a receipt opened once at the stall opens again without
 * a signal; its proof check re-runs on the saved data.
 */
"use strict";

var VERSION = "tracepay-consumer-v2";
// Only what a trace page needs; the scan page's decoder is saved when first used, so a
// shopper who only reads a receipt never downloads it.
var ASSETS = ["/static/verify.js"];
// Not /pay/: a saved pay page could offer to pay an order that has since been paid.
var PAGES = /^\/(trace|receipt|stall)\/[A-Za-z0-9_.:-]+$|^\/scan$/;
var NETWORK_TIMEOUT_MS = 4000;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(VERSION).then(function (cache) { return cache.addAll(ASSETS); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== VERSION; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function withTimeout(promise, ms) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, ms);
    promise.then(function (v) { clearTimeout(timer); resolve(v); },
                 function (e) { clearTimeout(timer); reject(e); });
  });
}

function networkFirst(request) {
  return caches.open(VERSION).then(function (cache) {
    return withTimeout(fetch(request), NETWORK_TIMEOUT_MS).then(function (response) {
      if (response.ok) { cache.put(request, response.clone()); }
      return response;
    }).catch(function (err) {
      return cache.match(request, { ignoreVary: true }).then(function (saved) {
        if (saved) { return saved; }
        throw err;
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok) {
          var copy = response.clone();
          caches.open(VERSION).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
  } else if (PAGES.test(url.pathname)) {
    event.respondWith(networkFirst(request));
  }
});

/* The page that registered us asks to be saved: its first load was not ours to see. */
self.addEventListener("message", function (event) {
  var wanted = event.data && event.data.save;
  if (typeof wanted !== "string") { return; }
  var url = new URL(wanted, self.location.origin);
  if (url.origin !== self.location.origin || !PAGES.test(url.pathname)) { return; }
  event.waitUntil(caches.open(VERSION).then(function (cache) {
    return fetch(url.href, { credentials: "same-origin" }).then(function (response) {
      if (response.ok) { return cache.put(url.href, response); }
    });
  }).catch(function () {}));
});

/* Camera scan page: frames from getUserMedia decoded by the vendored jsQR.
 *
 * A decoded tracepay link (a payment QR on a customer display, a receipt's trace QR, a
 * stall's static QR) on this app's or its gateway's origin is opened directly; anything else
 * is only shown as a link, never followed by itself, so a sticker pasted over a stall's code
 * cannot silently send the shopper elsewhere.
 */
(function () {
  "use strict";

  var OURS = /^\/(q|pay|receipt|trace|stall)\/[A-Za-z0-9_.:~-]+\/?$/;

  function trustedOrigins() {
    // This app and the gateway it serves; set by the server on the scan card.
    var holder = document.getElementById("scan-card");
    var listed = holder ? (holder.getAttribute("data-open-origins") || "").split(" ") : [];
    return [window.location.origin].concat(listed.filter(Boolean));
  }

  function classify(text) {
    var url;
    try { url = new URL(text, window.location.href); } catch (e) { return { open: false }; }
    if (!/^https?:$/.test(url.protocol)) { return { open: false }; }
    var trusted = trustedOrigins().indexOf(url.origin) !== -1;
    return { open: trusted && OURS.test(url.pathname), url: url.href };
  }

  function decode(imageData) {
    if (typeof jsQR !== "function") { return null; }
    var found = jsQR(imageData.data, imageData.width, imageData.height,
                     { inversionAttempts: "attemptBoth" });
    return found ? found.data : null;
  }

  function showResult(text) {
    var verdict = classify(text);
    var link = document.getElementById("scan-link");
    link.textContent = text;
    link.href = verdict.url || "#";
    document.getElementById("scan-result").hidden = false;
    document.getElementById("scan-foreign").hidden = verdict.open;
    if (verdict.open) { window.location.assign(verdict.url); }
  }

  function start() {
    var video = document.getElementById("scan-video");
    var canvas = document.getElementById("scan-canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      document.getElementById("scan-error").hidden = false;
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        document.getElementById("scan-start").hidden = true;
        return video.play().then(function () { tick(stream); });
      })
      .catch(function () { document.getElementById("scan-error").hidden = false; });

    function tick(stream) {
      if (video.readyState === video.HAVE_ENOUGH_DATA && video.videoWidth) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var text = decode(context.getImageData(0, 0, canvas.width, canvas.height));
        if (text) {
          stream.getTracks().forEach(function (track) { track.stop(); });
          video.hidden = true;
          document.getElementById("scan-start").hidden = false;
          showResult(text);
          return;
        }
      }
      window.requestAnimationFrame(function () { tick(stream); });
    }
  }

  window.TracepayScan = { classify: classify, decode: decode };
  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("scan-start").addEventListener("click", start);
  });
})();

if ("serviceWorker" in navigator) {
  var servedByWorker = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.register("/sw.js").then(function () {
    return navigator.serviceWorker.ready;
  }).then(function (reg) {
    if (!servedByWorker && reg.active) {
      reg.active.postMessage({save: location.pathname + location.search});
    }
  }).catch(function () {});
}

/* Progressive enhancement only: every page works without this file. No inline script (CSP). */
(function () {
  "use strict";

  // Leave quickly: replace this page in history so Back does not return here; Escape also leaves.
  function leave(event) {
    if (event) { event.preventDefault(); }
    document.body.hidden = true;
    window.location.replace("https://www.bbc.co.uk/weather");
  }
  document.querySelectorAll("[data-quick-exit]").forEach(function (link) {
    link.addEventListener("click", leave);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !event.defaultPrevented && document.querySelector("[data-quick-exit]")) {
      leave(event);
    }
  });

  // Move focus to the error summary so screen readers announce it first.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) { summary.focus(); }

  // Show the identity questions only for modes that use them (all are shown without JavaScript).
  document.querySelectorAll("[data-show-for]").forEach(function (block) {
    var name = block.getAttribute("data-show-for");
    var values = block.getAttribute("data-values").split(" ");
    var inputs = document.querySelectorAll('input[name="' + name + '"]');
    function update() {
      var chosen = document.querySelector('input[name="' + name + '"]:checked');
      var show = chosen && values.indexOf(chosen.value) !== -1;
      var hasError = block.querySelector(".form-group--error");
      block.hidden = !(show || hasError);
    }
    inputs.forEach(function (input) { input.addEventListener("change", update); });
    update();
  });
})();

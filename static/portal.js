/* Progressive enhancement only: every page works without this file. No inline script (CSP). */
(function () {
  "use strict";

  // Exit this page (GOV.UK's pattern): the button, or Shift pressed three times within 5 seconds. Never Escape,
  // which people press by accident while typing. Leaving goes through the link's own address (/leave), which
  // deletes what this browser had not sent and sends it on to the BBC weather page; location.replace takes
  // this page out of the history, so Back does not return to it.
  var exit = document.querySelector("[data-quick-exit]");
  function leave(event) {
    if (event) { event.preventDefault(); }
    document.body.hidden = true;
    document.title = "Loading";
    window.location.replace(exit.getAttribute("href"));
  }
  if (exit) {
    exit.addEventListener("click", leave);
    var hint = document.querySelector("[data-shift-hint]");
    if (hint) { hint.hidden = false; }
    var presses = [];
    var otherKey = false;
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Shift") { otherKey = true; presses = []; }
    });
    document.addEventListener("keyup", function (event) {
      if (event.key !== "Shift") { return; }
      if (otherKey) { otherKey = false; return; } // Shift used to type a capital: not a press of its own
      var now = Date.now();
      presses = presses.filter(function (at) { return now - at < 5000; });
      presses.push(now);
      if (presses.length >= 3) { presses = []; leave(); }
    });
  }

  // Move focus to the error summary so screen readers announce it first.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) { summary.focus(); }

  // Show what a choice reveals only when it is chosen (all is shown without JavaScript): the identity questions
  // for modes that use them, the email box for "Email me".
  document.querySelectorAll("[data-show-for]").forEach(function (block) {
    var name = block.getAttribute("data-show-for");
    var values = block.getAttribute("data-values").split(" ");
    var inputs = document.querySelectorAll('input[name="' + name + '"]');
    function update() {
      var chosen = Array.prototype.some.call(inputs, function (input) {
        return input.checked && values.indexOf(input.value) !== -1;
      });
      var hasError = block.querySelector(".form-group--error");
      block.hidden = !(chosen || hasError);
    }
    inputs.forEach(function (input) { input.addEventListener("change", update); });
    update();
  });
})();

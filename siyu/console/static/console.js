// The console's only script: confirmation for destructive forms and the mobile nav toggle.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) ||
      form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-toggle]");
    if (!toggle) {
      return;
    }
    var target = document.getElementById(toggle.getAttribute("data-toggle"));
    if (target) {
      target.classList.toggle("open");
    }
  });
})();

// Small progressive enhancements; every page works without them. No inline scripts (CSP).
(function () {
  "use strict";

  // Copy buttons: <button data-copy-target="#id">
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.querySelector(button.getAttribute("data-copy-target"));
      if (!target || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(target.value || target.textContent).then(function () {
        var done = button.getAttribute("data-copied-label");
        if (done) { button.textContent = done; }
      });
    });
  });

  // Forms that ask before doing something that cannot be undone: <form data-confirm="…">
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // Selects that submit their form on change: <select data-autosubmit>
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();

// liandong console: the little JavaScript there is. Every page works without it.
(function () {
  "use strict";

  // Federation page: reload every 5 seconds while the box is ticked.
  var refresh = document.getElementById("auto-refresh");
  if (refresh) {
    var schedule = function () {
      if (refresh.checked) {
        window.setTimeout(function () {
          if (!refresh.checked) return;
          var u = new URL(window.location.href);
          u.searchParams.set("refresh", "1");
          window.location.replace(u.toString());
        }, 5000);
      }
    };
    refresh.addEventListener("change", function () {
      if (!refresh.checked) {
        var u = new URL(window.location.href);
        u.searchParams.delete("refresh");
        window.history.replaceState(null, "", u.toString());
      }
      schedule();
    });
    schedule();
  }

  // Need form: the challenge terms matter only for a challenge call (揭榜挂帅);
  // they stay visible when filled in or marked with an error.
  var kind = document.getElementById("body.kind");
  var challenge = document.querySelector('fieldset[data-group="body.challenge"]');
  if (kind && challenge) {
    var filled = function () {
      var inputs = challenge.querySelectorAll("input, textarea");
      for (var i = 0; i < inputs.length; i++) {
        if (inputs[i].value.trim() !== "") return true;
      }
      return challenge.querySelector(".field-error") !== null;
    };
    var sync = function () {
      challenge.hidden = kind.value !== "challenge" && !filled();
    };
    kind.addEventListener("change", sync);
    sync();
  }

  // Record forms: the language switch posts what was typed to the form in the
  // other language (marked _relang: shown again, not saved) instead of
  // opening it afresh. (A submit button in the header would become the form's
  // default button, which Enter in a text field clicks.)
  var langSwitch = document.getElementById("lang-switch");
  var recordForm = document.getElementById("record-form");
  if (langSwitch && recordForm) {
    langSwitch.addEventListener("click", function (ev) {
      ev.preventDefault();
      var mark = document.createElement("input");
      mark.type = "hidden";
      mark.name = "_relang";
      mark.value = "1";
      recordForm.appendChild(mark);
      recordForm.action = langSwitch.getAttribute("href");
      recordForm.submit();
    });
  }

  // Filters of the list submit as soon as one changes.
  var search = document.getElementById("search-form");
  if (search) {
    var selects = search.querySelectorAll("select");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function () { search.submit(); });
    }
  }
})();

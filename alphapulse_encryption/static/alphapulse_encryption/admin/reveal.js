// Reveal and Hide buttons of masked encrypted fields: Reveal POSTs (with the CSRF token)
// to the admin's reveal view and shows the answer as text, with a note that the reveal
// was recorded in the audit log; Hide removes the text from the page again. Nothing is
// cached or stored by this script.
"use strict";
(function () {
  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) {
      return input.value;
    }
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function parts(button) {
    const group = button.closest(".ape-reveal-group");
    return {
      reveal: group.querySelector("button.ape-reveal"),
      output: group.querySelector(".ape-revealed"),
      hide: group.querySelector("button.ape-hide"),
      note: group.querySelector(".ape-reveal-note"),
    };
  }

  async function reveal(button) {
    const {output, hide, note} = parts(button);
    button.disabled = true;
    let text;
    let failed = false;
    try {
      const response = await fetch(button.dataset.revealUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {"X-CSRFToken": csrfToken(), "X-Requested-With": "XMLHttpRequest"},
      });
      const data = await response.json().catch(() => ({}));
      failed = !response.ok;
      text = failed ? (data.error || "Refused (" + response.status + ")") : data.value;
    } catch (error) {
      failed = true;
      text = "Reveal failed.";
    }
    output.textContent = text === null ? "(empty)" : text;
    output.classList.toggle("ape-reveal-error", failed);
    output.hidden = false;
    button.hidden = !failed;
    button.disabled = false;
    if (!failed) {
      // The server answers only once the audit entry is written.
      hide.hidden = false;
      note.hidden = false;
      hide.focus();
    }
  }

  function hide(button) {
    const {reveal, output} = parts(button);
    // Removed, not only hidden: the value leaves the page (and the DOM) again.
    output.textContent = "";
    output.hidden = true;
    button.hidden = true;
    reveal.hidden = false;
    reveal.focus();
  }

  document.addEventListener("click", function (event) {
    const revealButton = event.target.closest("button.ape-reveal[data-reveal-url]");
    if (revealButton) {
      event.preventDefault();
      reveal(revealButton);
      return;
    }
    const hideButton = event.target.closest("button.ape-hide");
    if (hideButton && hideButton.closest(".ape-reveal-group")) {
      event.preventDefault();
      hide(hideButton);
    }
  });
})();

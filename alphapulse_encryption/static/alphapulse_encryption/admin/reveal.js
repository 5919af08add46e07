// Reveal buttons of masked encrypted fields: POST (with the CSRF token) to the admin's
// reveal view and show the answer as text. Nothing is cached or stored by this script.
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

  async function reveal(button) {
    const output = button.closest(".ape-reveal-group").querySelector(".ape-revealed");
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
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.ape-reveal[data-reveal-url]");
    if (button) {
      event.preventDefault();
      reveal(button);
    }
  });
})();

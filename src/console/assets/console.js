// Progressive enhancement only: every page works without this file. It adds a "Copy" button
// next to secrets shown once (a new key, a new account token).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll("[data-copy]").forEach(function (secret) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = "Copy";
    button.setAttribute("data-copy-button", "");
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(secret.textContent.trim()).then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Select and copy by hand";
      });
    });
    secret.insertAdjacentElement("afterend", button);
  });
});

// Deployment pages: the Quick Run dialog and the run forms' bodies
// (parameters from the schema form, the start time as a SCHEDULED time).
"use strict";

(() => {
  function startTime(form) {
    const input = form.querySelector("[data-start-time]");
    if (!input || !input.value) return undefined;
    const when = new Date(input.value); // datetime-local: the browser's local time
    if (Number.isNaN(when.getTime())) throw new skyrunSchemaForm.FieldError("scheduled_time", "not a date and time");
    return when.toISOString();
  }

  skyrun.hook("deployment-run", (body, form) => {
    const result = { ...body, parameters: skyrunSchemaForm.given(form) };
    const when = startTime(form);
    if (when) result.scheduled_time = when;
    return result;
  });

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) {
        dialog.showModal();
        dialog.querySelector("input, select, textarea")?.focus();
      }
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog")?.close();
  });
})();

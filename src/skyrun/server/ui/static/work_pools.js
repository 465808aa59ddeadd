// Work-pool pages: the new pool's default template by type, and the bodies of the
// settings, template-variables, raw-template and queue forms.
"use strict";

(() => {
  // An <input data-limit>: empty means "no limit" (null), which the API takes as removing it.
  function limitOf(form) {
    const input = form.querySelector("input[data-limit]");
    if (!input) return undefined;
    if (input.value === "") {
      if (input.validity && input.validity.badInput) throw new skyrunSchemaForm.FieldError(input.name, "not a number");
      return null;
    }
    const value = Number(input.value);
    if (!Number.isInteger(value)) throw new skyrunSchemaForm.FieldError(input.name, "must be a whole number");
    return value;
  }

  skyrun.hook("pool-settings", (body, form) => ({
    description: body.description ? body.description : null,
    concurrency_limit: limitOf(form),
  }));

  // The edited defaults go into the pool's current template, read fresh from the API.
  skyrun.hook("pool-variables", async (_body, form) => {
    const values = skyrunSchemaForm.values(form);
    const pool = await skyrun.api("GET", form.dataset.poolApi);
    const template = pool.base_job_template;
    const properties = (template.variables && template.variables.properties) || {};
    for (const [name, value] of values) {
      const schema = properties[name];
      if (!schema || typeof schema !== "object") continue;
      if (value === undefined) delete schema.default;
      else schema.default = value;
    }
    return { base_job_template: template };
  });

  skyrun.hook("pool-template", (_body, form) => {
    const text = form.querySelector("#pool-template").value;
    try {
      return { base_job_template: JSON.parse(text) };
    } catch (error) {
      throw new skyrunSchemaForm.FieldError("base_job_template", `not valid JSON: ${error.message}`);
    }
  });

  skyrun.hook("queue-edit", (body, form) => {
    form.dataset.api = form.dataset.queuesApi + encodeURIComponent(body.queue || "");
    const result = { concurrency_limit: limitOf(form) };
    if (body.priority !== undefined) result.priority = body.priority;
    return result;
  });

  document.addEventListener("change", (event) => {
    const type = event.target.closest("[data-pool-type]");
    if (type) {
      const source = document.querySelector(`template[data-default-template="${CSS.escape(type.value)}"]`);
      const editor = document.getElementById("pool-template");
      if (source && editor) editor.value = source.content.textContent;
      return;
    }
    const queue = event.target.closest("[data-queue-select]");
    if (queue) {
      const option = queue.selectedOptions[0];
      const form = queue.closest("form");
      form.querySelector("#edit-priority").value = option ? option.dataset.priority : "";
      form.querySelector("#edit-concurrency").value = option ? option.dataset.queueLimit : "";
    }
  });
})();
